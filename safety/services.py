"""The safety event log: every write goes through here.

Contract:
- Every function takes the acting user as keyword `by` and asks imrtrial.access first: the user
  must hold enter_staff_rating and see allocation data at the participant's site
  (`may_record`). That is the case manager's seat; a facilitator holds the same permissions and
  keeps them: in the Danish trial facilitators were often the case managers of control
  participants too (DOMAIN.md 8), and a harm a clinician learns of must not wait for another
  to record it. Blinded roles (the assessor, data manager, monitor, statistician, investigator)
  may not: the event's words and its relatedness to the intervention tell the arm.
- An event is checked whole before anything is written: its category belongs to its kind; its
  onset is neither in the future nor before randomization; a serious event is adverse and names
  its seriousness criteria; a suicide or a death is serious ("resulted in death") and fatal.
  A refusal raises Refused and writes nothing (each function is one transaction).
- Relatedness to the intervention is a separate judgement by a named clinician, who may be
  another than the one who recorded the event (a site's chief clinician); a second judgement of
  the same event needs a reason.
- Corrections need a reason; simple-history keeps each version with its author and reason
  (imrtrial.audit.attribute). Rows are never deleted.
- Every function is a registered writer of clinical data (imrtrial.locking): nothing is written
  while the database or the participant's casebook is locked.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access
from imrtrial.audit import attribute
from imrtrial.errors import Refused
from imrtrial.i18n_text import short_date
from imrtrial.locking import Scope, writes_clinical_data
from imrtrial.models import Perm

from .models import SafetyEvent

REASON_MAX = 500  # simple-history's change reason column
EVENT_FIELDS = ("kind", "category", "onset_on", "description", "serious", "seriousness", "outcome")


def may_read(user, participant):
    """May the user read the participant's event log? Whoever may see allocation data there."""
    return access.may_see_allocation(user, participant.trial, participant.site)


def may_record(user, participant):
    """May the user record, correct and judge the participant's events?"""
    return access.may_do_unblinded(
        user, Perm.ENTER_STAFF_RATING, participant.trial, participant.site
    )


def _require(by, participant):
    if not may_record(by, participant):
        raise Refused(
            _("You may not record safety events at %(site)s.") % {"site": participant.site.name}
        )


def _checked(participant, fields):
    """The event's fields, cleaned, or Refused naming the first thing wrong."""
    E = SafetyEvent
    kind, category = fields["kind"], fields["category"]
    if kind not in E.Kind.values:
        raise Refused(_("Say whether the event is adverse or beneficial."))
    if category not in E.CATEGORIES[E.Kind(kind)]:
        raise Refused(
            _("Choose a category of adverse events.")
            if E.Kind(kind) == E.Kind.ADVERSE
            else _("Choose a category of beneficial events.")
        )
    if fields["outcome"] not in E.Outcome.values:
        raise Refused(_("Choose the event's outcome."))
    onset = fields["onset_on"]
    if onset is None:
        raise Refused(_("Give the date the event began."))
    if onset > timezone.localdate():
        raise Refused(_("The onset date cannot be in the future."))
    if participant.randomized_on is None:
        raise Refused(_("Events are recorded from randomization on; this participant is not yet."))
    if onset < participant.randomized_on:
        raise Refused(
            _("The onset date cannot be before randomization (%(randomized_on)s).")
            % {"randomized_on": short_date(participant.randomized_on)}
        )
    description = (fields["description"] or "").strip()
    if not description:
        raise Refused(_("Describe the event."))
    if len(description) > E._meta.get_field("description").max_length:
        raise Refused(_("The description is too long (2000 characters at most)."))
    seriousness = list(dict.fromkeys(fields["seriousness"] or ()))
    if any(code not in E.Seriousness.values for code in seriousness):
        raise Refused(_("Choose seriousness criteria from the list."))
    serious = bool(fields["serious"])
    if kind == E.Kind.BENEFICIAL and (serious or seriousness):
        raise Refused(_("A beneficial event is not serious: seriousness is for adverse events."))
    if serious != bool(seriousness):
        raise Refused(
            _("A serious adverse event names its seriousness criteria, and only it does.")
        )
    if kind == E.Kind.BENEFICIAL and fields["outcome"] == E.Outcome.FATAL:
        raise Refused(_("A beneficial event is not fatal."))
    fatal = category in E.FATAL_CATEGORIES or fields["outcome"] == E.Outcome.FATAL
    if fatal and not (fields["outcome"] == E.Outcome.FATAL and E.Seriousness.DEATH in seriousness):
        raise Refused(
            _("A death is serious (resulted in death) and its outcome is fatal; record it so.")
        )
    order = E.Seriousness.values
    return {
        **fields,
        "description": description,
        "serious": serious,
        "seriousness": sorted(seriousness, key=order.index),
    }


@writes_clinical_data("safety.record_event", lambda a: Scope.of(a["participant"]))
@transaction.atomic
def record_event(
    participant,
    *,
    by,
    kind,
    category,
    onset_on,
    description,
    outcome,
    serious=False,
    seriousness=(),
):
    """Record an adverse or beneficial event of the participant; its relatedness is judged
    later (judge_relatedness)."""
    _require(by, participant)
    fields = _checked(
        participant,
        {
            "kind": kind,
            "category": category,
            "onset_on": onset_on,
            "description": description,
            "serious": serious,
            "seriousness": seriousness,
            "outcome": outcome,
        },
    )
    event = SafetyEvent(participant=participant, entered_by=by, **fields)
    attribute(event, by=by).save()
    return event


def _locked(event):
    # One writer per event at a time: a correction and a judgement made together both count.
    return (
        SafetyEvent.objects.select_for_update().select_related("participant__site").get(pk=event.pk)
    )


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise Refused(_("Give the reason for the change."))
    if len(reason) > REASON_MAX:
        raise Refused(_("The reason is too long (%(n)s characters at most).") % {"n": REASON_MAX})
    return reason


@writes_clinical_data("safety.correct_event", lambda a: Scope.of(a["event"]))
@transaction.atomic
def correct_event(event, *, by, reason, **changes):
    """Correct what was recorded of the event (any of its fields but the judgement), with a
    reason. The judgement stays: the audit trail shows what it was made of."""
    _require(by, event.participant)
    reason = _reason(reason)
    unknown = set(changes) - set(EVENT_FIELDS)
    if unknown:
        raise TypeError(f"Not fields of an event: {sorted(unknown)}")
    event = _locked(event)
    fields = _checked(
        event.participant, {name: changes.get(name, getattr(event, name)) for name in EVENT_FIELDS}
    )
    changed = [name for name in EVENT_FIELDS if fields[name] != getattr(event, name)]
    if not changed:
        raise Refused(_("Nothing was changed."))
    for name in changed:
        setattr(event, name, fields[name])
    attribute(event, by=by, reason=reason).save(update_fields=changed)
    return event


@writes_clinical_data("safety.judge_relatedness", lambda a: Scope.of(a["event"]))
@transaction.atomic
def judge_relatedness(event, *, by, relatedness, judged_on, reason=""):
    """Record `by`'s judgement of how the event relates to the trial intervention, on
    `judged_on`; judging it again needs a reason."""
    _require(by, event.participant)
    E = SafetyEvent
    if relatedness not in E.Relatedness.values or relatedness == E.Relatedness.NOT_JUDGED:
        raise Refused(_("Choose how the event relates to the trial intervention."))
    event = _locked(event)
    if judged_on is None or judged_on > timezone.localdate():
        raise Refused(_("The date of the judgement cannot be in the future."))
    if judged_on < event.onset_on:
        raise Refused(
            _("The event cannot be judged before it began (%(onset_on)s).")
            % {"onset_on": short_date(event.onset_on)}
        )
    why = _reason(reason) if event.judged else (reason or "").strip()[:REASON_MAX]
    event.relatedness, event.judged_by, event.judged_on = relatedness, by, judged_on
    attribute(event, by=by, reason=why or "relatedness judged").save(
        update_fields=["relatedness", "judged_by", "judged_on"]
    )
    return event
