"""Screening and randomization services.

Contract:
- Every function takes the acting user as keyword `by`, asks imrtrial.access whether they may act,
  and raises Refused with a message a coordinator can read out on the phone; a refusal writes
  nothing.
- screen() logs every person screened, eligible or not; eligibility is computed from the answers.
- randomize() is one short transaction: the lock check (imrtrial.locking), the participant row
  locked with its screening read, every precondition asked, the follow-up visits scheduled; then
  the stratum row is locked (SELECT ... FOR UPDATE), the next slot taken, and one statement
  writes the allocation (UNIQUE participant, UNIQUE stratum+slot) with its audit row, its
  notice (an outbox row, sent after commit by the sweep, send_pending_notices), the stratum's
  next slot and the participant's status with its audit row (randomization.statements). A
  repeated call returns the allocation already made. Nothing but that one write happens while
  the stratum is locked (tests/randomization/test_query_count.py pins it, and the number of
  queries).
- Allocation rows are read only here and in this app's views and admin, through the gate.
"""

import functools
import hashlib
import hmac
import logging
import random
import re
import secrets
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access, lifecycle, outbox
from imrtrial.audit import attribute
from imrtrial.celery import app as celery_app
from imrtrial.errors import Refused
from imrtrial.locking import Scope, writes_clinical_data
from imrtrial.models import (
    Arm,
    Membership,
    Participant,
    Perm,
    Role,
    StratificationFactor,
    Trial,
)
from imrtrial.rowloader import RowLoader

from . import minimization, sequence
from .models import (
    Allocation,
    AllocationNotice,
    IdentifyingDetails,
    ListEntry,
    Screening,
    Stratum,
)
from .statements import statements

logger = logging.getLogger(__name__)
# The task that sent one notice, queued after commit before the outbox (AllocationNotice); it
# stays registered for the messages queued before an upgrade.
NOTIFY_ALLOCATION = "randomization.tasks.notify_allocation"

# Codes read aloud on the phone: no 0/O, 1/I/L, or U.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


# By SQL written once per process (imrtrial.rowloader): the desk's randomize and result pages
# read it on every call, and compiling the queryset cost more CPU than running it.
_ALLOCATION = RowLoader(Allocation, related=("arm",), where=("participant",))


def allocation_of(participant):
    """The participant's allocation (with its arm), or None. Callers must have asked the gate
    first."""
    return _ALLOCATION.get(participant=participant.pk)


def desk_result(allocation):
    """What the phone desk's result page reads out (templates/randomization/result.html), as
    plain values for the web API's randomize endpoint. Callers must have asked the gate first
    (access.require_allocation_access at the participant's site)."""
    return {
        "participant_id": allocation.participant.participant_id,
        "arm": allocation.arm.label,
        "randomization_number": allocation.randomization_number,
        "allocated_at": allocation.allocated_at,
        "confirmation_code": allocation.confirmation_code,
        "in_error": allocation.in_error,
        "in_error_reason": allocation.in_error_reason if allocation.in_error else "",
    }


# --- Screening -------------------------------------------------------------------------------


def eligibility(criteria, answers):
    """(eligible, reasons): eligible when every inclusion criterion is answered yes and every
    exclusion criterion no. Reasons are the texts of the criteria that exclude."""
    reasons = [c.text for c in criteria if c.excludes(answers[c.code])]
    return not reasons, reasons


def national_id_key(national_id):
    return re.sub(r"[^0-9A-Z]", "", national_id.upper())


def _next_number(model, trial, prefix):
    """The next running number for the trial, under a lock on the trial row (screening and
    enrolment are rare; randomization never takes this lock)."""
    # FOR NO KEY UPDATE: it serializes numbering but not the lock check's KEY SHARE
    # (imrtrial.locking), which only a database lock (FOR UPDATE) waits on.
    Trial.objects.select_for_update(no_key=True).filter(pk=trial.pk).first()
    return f"{prefix}{model.objects.filter(trial=trial).count() + 1:04d}"


@writes_clinical_data("randomization.screen", lambda a: Scope.of(a["trial"]))
@transaction.atomic
def screen(
    trial,
    site,
    *,
    by,
    answers,
    screened_on,
    referral_source="",
    full_name="",
    national_id="",
    phone="",
    consent_date=None,
    consent_form_version="",
    consent_obtained_by="",
):
    """Log one screened person. Every criterion must be answered yes or no."""
    if not access.has(by, Perm.RANDOMIZE, trial, site):
        raise Refused(_("You are not a coordinator for this site."))
    if site.trial_id != trial.pk:
        raise Refused(_("That site does not belong to this trial."))
    criteria = list(trial.criteria.all())
    missing = [c.text for c in criteria if not isinstance(answers.get(c.code), bool)]
    if missing:
        raise Refused(
            _("Every criterion needs a yes or no answer: %(missing)s")
            % {"missing": "; ".join(missing)}
        )
    eligible, reasons = eligibility(criteria, answers)
    if consent_date and not (consent_form_version and consent_obtained_by):
        raise Refused(_("Consent needs the form version and who obtained it."))
    key = national_id_key(national_id)
    duplicate = None
    if key:
        duplicate = (
            Screening.objects.filter(trial=trial, identifying__national_id_key=key)
            .order_by("created_at")
            .first()
        )
    screening = Screening(
        trial=trial,
        site=site,
        screening_number=_next_number(Screening, trial, "S"),
        screened_on=screened_on,
        referral_source=referral_source,
        answers={c.code: answers[c.code] for c in criteria},
        eligible=eligible,
        exclusion_reasons=reasons,
        consent_date=consent_date,
        consent_form_version=consent_form_version,
        consent_obtained_by=consent_obtained_by,
        possible_duplicate_of=duplicate,
        screened_by=by,
    )
    attribute(screening, by=by).save()
    details = IdentifyingDetails(
        screening=screening,
        full_name=full_name.strip(),
        national_id=national_id.strip(),
        national_id_key=key,
        phone=phone.strip(),
    )
    attribute(details, by=by).save()
    return screening


@writes_clinical_data("randomization.record_consent", lambda a: Scope.of(a["screening"]))
@transaction.atomic
def record_consent(screening, *, by, consent_date, form_version, obtained_by):
    if not access.has(by, Perm.RANDOMIZE, screening.trial, screening.site):
        raise Refused(_("You are not a coordinator for this site."))
    if not (consent_date and form_version.strip() and obtained_by.strip()):
        raise Refused(_("Consent needs its date, the form version and who obtained it."))
    screening = Screening.objects.select_for_update().get(pk=screening.pk)
    screening.consent_date = consent_date
    screening.consent_form_version = form_version.strip()
    screening.consent_obtained_by = obtained_by.strip()
    attribute(screening, by=by, reason="consent recorded").save(
        update_fields=["consent_date", "consent_form_version", "consent_obtained_by"]
    )
    return screening


def check_factor_levels(trial, levels):
    """Refuse unless every non-site stratification factor has one of its levels."""
    problems = []
    for factor in trial.factors.filter(from_site=False):
        if levels.get(factor.code) not in factor.level_codes():
            problems.append(
                _("%(factor)s is missing or not one of its levels") % {"factor": factor.label}
            )
    if problems:
        raise Refused("; ".join(problems))


@writes_clinical_data("randomization.enrol", lambda a: Scope.of(a["screening"]))
@transaction.atomic
def enrol(screening, *, by, factor_levels):
    """Give an eligible, consented person a pseudonymous participant id."""
    trial = screening.trial
    if not access.has(by, Perm.RANDOMIZE, trial, screening.site):
        raise Refused(_("You are not a coordinator for this site."))
    screening = Screening.objects.select_for_update().get(pk=screening.pk)
    if screening.participant_id:
        return screening.participant
    if not screening.eligible:
        raise Refused(
            _("This person is not eligible: %(reasons)s")
            % {"reasons": "; ".join(screening.exclusion_reasons)}
        )
    if not screening.consented:
        raise Refused(_("Informed consent has not been recorded."))
    check_factor_levels(trial, factor_levels)
    participant = Participant(
        trial=trial,
        site=screening.site,
        participant_id=_next_number(Participant, trial, f"{trial.id_prefix}-"),
        factor_levels={k: factor_levels[k] for k in sorted(factor_levels)},
    )
    attribute(participant, by=by).save()
    screening.participant = participant
    attribute(screening, by=by, reason="enrolled").save(update_fields=["participant"])
    lifecycle.schedule_changed(participant)
    return participant


# --- Randomization ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _trial_setup(trial_pk, trial_key, method, block_sizes):
    """(design, {arm code: arm pk}, factors) of a trial. Arms, factors and design are fixed once
    the trial opens, so they are read once per process, not under the stratum lock."""
    arms = list(Arm.objects.filter(trial_id=trial_pk).order_by("code"))
    design = None
    if method == Trial.Method.PERMUTED_BLOCKS:
        design = sequence.Design(
            arms=tuple(a.code for a in arms),
            ratio=tuple(a.ratio for a in arms),
            block_sizes=tuple(block_sizes),
        )
    factors = tuple(
        (f.code, f.from_site) for f in StratificationFactor.objects.filter(trial_id=trial_pk)
    )
    levels = {
        f.code: (f.label, frozenset(f.level_codes()))
        for f in StratificationFactor.objects.filter(trial_id=trial_pk, from_site=False)
    }
    return Setup(
        design, {a.code: a.pk for a in arms}, tuple(a.ratio for a in arms), factors, levels
    )


class Setup(NamedTuple):
    """What randomizing in a trial needs, read once per process (_trial_setup)."""

    design: object  # sequence.Design of permuted blocks, or None
    arm_pks: dict  # {arm code: Arm pk}
    ratio: tuple  # allocation ratio, in arm-code order
    factors: tuple  # ((factor code, from_site), ...)
    levels: dict  # {factor code: (label, frozenset of level codes)} of non-site factors


def setup_of(trial):
    return _trial_setup(trial.pk, trial.key, trial.method, tuple(trial.block_sizes))


def stratum_key(participant, factors):
    """e.g. "diagnosis=bipolar|centre=ballerup"; one stratum for a minimized trial."""
    if participant.trial.method == Trial.Method.MINIMIZATION:
        return "all"
    parts = []
    for code, from_site in factors:
        level = participant.site.code if from_site else participant.factor_levels.get(code)
        parts.append(f"{code}={level}")
    return "|".join(parts)


def all_stratum_keys(trial):
    """Every stratum key the trial can have, in the form stratum_key() makes."""
    if trial.method == Trial.Method.MINIMIZATION:
        return ["all"]
    factors = list(trial.factors.all())
    keys = [""]
    for factor in factors:
        keys = [
            f"{k}|{factor.code}={level}" if k else f"{factor.code}={level}"
            for k in keys
            for level in factor.level_codes()
        ]
    return keys


def check_can_randomize(participant, *, by, screening=None):
    """Refuse, with the reason, unless this user may randomize this participant now.
    `screening`: the participant's screening as {"eligible", "consent_date"} when the caller has
    read it already (randomize() reads it with the participant's row lock); else it is read."""
    trial = participant.trial
    if not access.has(by, Perm.RANDOMIZE, trial, participant.site):
        raise Refused(_("You are not a coordinator for this participant's site."))
    if trial.status != Trial.Status.OPEN:
        raise Refused(
            _("The trial is not open for randomization (%(status)s).")
            % {"status": trial.get_status_display()}
        )
    if participant.status == Participant.Status.WITHDRAWN:
        raise Refused(_("This participant has withdrawn."))
    if screening is None:
        screening = (
            Screening.objects.filter(participant=participant)
            .values("eligible", "consent_date")
            .first()
        )
    if screening is None or not screening["eligible"]:
        raise Refused(_("This participant has no eligible screening on record."))
    if screening["consent_date"] is None:
        raise Refused(_("Informed consent has not been recorded."))
    if trial.baseline_required_before_randomization and not participant.baseline_completed_on:
        raise Refused(_("The baseline assessment must be complete before randomization."))
    missing = [
        label
        for code, (label, codes) in setup_of(trial).levels.items()
        if participant.factor_levels.get(code) not in codes
    ]
    if missing:
        raise Refused(
            "; ".join(
                _("%(factor)s is missing or not one of its levels") % {"factor": label}
                for label in missing
            )
        )
    if not settings.RANDOMIZATION_SECRET and trial.method != Trial.Method.UPLOADED_LIST:
        raise Refused(_("Randomization is not configured on this server (no secret)."))


def _code(n):
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _minimization_rng(trial, slot):
    digest = hmac.new(
        settings.RANDOMIZATION_SECRET.encode(),
        f"{trial.key}|minimization|{slot}".encode(),
        hashlib.sha256,
    ).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _minimized_arm(participant, factors, arm_codes, ratio, slot):
    """Pocock-Simon over the trial's factors, counting allocations made so far (under lock)."""
    trial = participant.trial
    counts = {code: {} for code, _ in factors}
    rows = Allocation.objects.filter(trial=trial).values_list(
        "participant__site__code", "participant__factor_levels", "arm__code"
    )
    for site_code, levels, arm in rows:
        for code, from_site in factors:
            level = site_code if from_site else levels.get(code)
            per_arm = counts[code].setdefault(level, dict.fromkeys(arm_codes, 0))
            per_arm[arm] += 1
    mine = {
        code: participant.site.code if from_site else participant.factor_levels[code]
        for code, from_site in factors
    }
    return minimization.choose_arm(
        tuple(arm_codes),
        ratio,
        mine,
        counts,
        trial.minimization_p,
        _minimization_rng(trial, slot),
    )


def _arm_for(participant, stratum, setup):
    design, arm_pks, ratio, factors, _unused = setup
    trial = participant.trial
    if trial.method == Trial.Method.PERMUTED_BLOCKS:
        code = sequence.arm_at(
            design, settings.RANDOMIZATION_SECRET, trial.key, stratum.key, stratum.next_slot
        )
        return arm_pks[code]
    if trial.method == Trial.Method.MINIMIZATION:
        return arm_pks[
            _minimized_arm(participant, factors, list(arm_pks), ratio, stratum.next_slot)
        ]
    entry = ListEntry.objects.filter(
        trial=trial, stratum_key=stratum.key, slot=stratum.next_slot
    ).first()
    if entry is None:
        raise Refused(
            _(
                "The allocation list has no entry left for this stratum. Contact the trial "
                "statistician; nobody has been allocated."
            )
        )
    return entry.arm_id


@writes_clinical_data("randomization.randomize", lambda a: Scope.of(a["participant"]))
def _randomize_once(participant, *, by, baseline_completed_on=None):
    """One attempt, in the transaction the decorator opens once it has checked the locks (a
    locked trial or casebook refuses here, with nothing written). Round trips: the participant
    row with its screening, the follow-up visits, the stratum row, then one statement that
    writes everything (randomization.statements)."""
    sql = statements()
    with connection.cursor() as cursor:
        # Lock the participant first: a double click waits here and then finds the allocation,
        # and a withdrawal recorded meanwhile (withdraw() locks the same row) is seen, not
        # overwritten. The screening comes in the same round trip.
        sql.execute(cursor, "lock_participant", [participant.pk])
        row = cursor.fetchone()
        if row is None:
            raise Participant.DoesNotExist(f"No participant {participant.pk}.")
        status, eligible, consent_date = row
        screening = (
            None if eligible is None else {"eligible": eligible, "consent_date": consent_date}
        )
        # A repeat (a double click that waited on the lock) gets the allocation made, even if a
        # precondition changed meanwhile.
        if status == Participant.Status.RANDOMIZED:
            return allocation_of(participant)
        check_can_randomize(participant, by=by, screening=screening)
        if status != Participant.Status.CONSENTED:
            label = Participant.Status(status).label
            raise Refused(
                _("This participant cannot be randomized (%(status)s).") % {"status": label}
            )
        trial = participant.trial
        before = participant.status, participant.randomized_on
        try:
            participant.status = Participant.Status.RANDOMIZED
            participant.randomized_on = timezone.localdate()
            # The follow-up visits, in this transaction (all or nothing with the allocation) but
            # before the stratum is locked: the next caller of the stratum does not wait on them.
            # Followers see the participant randomized (status, date), never the arm.
            lifecycle.schedule_changed(participant)
            setup = setup_of(trial)
            key = stratum_key(participant, setup.factors)
            sql.execute(cursor, "lock_stratum", [trial.pk, key])
            row = cursor.fetchone()
            if row is None:
                cursor.execute(sql.insert_stratum, [trial.pk, key])
                sql.execute(cursor, "lock_stratum", [trial.pk, key])
                row = cursor.fetchone()
            stratum = Stratum(pk=row[0], trial=trial, key=key, next_slot=row[1])
            stratum._state.adding = False
            allocation = Allocation(
                trial=trial,
                participant=participant,
                stratum=stratum,
                slot=stratum.next_slot,
                arm_id=_arm_for(participant, stratum, setup),
                randomization_number=f"{trial.id_prefix}-R{_code(8)}",
                confirmation_code=_code(6),
                allocated_at=timezone.now(),
                allocated_by=by,
            )
            reason = "randomized"
            if baseline_completed_on is not None:
                reason = "randomized; baseline date reported at the phone desk"
            allocation.pk = _write(
                cursor, sql, allocation, participant, baseline_completed_on, reason
            )
        except BaseException:
            participant.status, participant.randomized_on = before
            raise
    allocation._state.adding, allocation._state.db = False, connection.alias
    stratum.next_slot += 1
    if celery_app.conf.task_always_eager:
        # No broker, so no beat to sweep the outbox (make run): send it now, after commit.
        transaction.on_commit(lambda: _send_now(allocation.pk))
    return allocation


def _write(cursor, sql, allocation, participant, baseline_completed_on, reason):
    """Write the allocation, its history row, its notice (to be sent), the stratum's next slot,
    the participant's status and its history row; return the allocation's key."""
    ops, by = connection.ops, allocation.allocated_by_id
    when = ops.adapt_datetimefield_value(allocation.allocated_at)
    stratum = allocation.stratum
    columns = {
        "trial_id": allocation.trial_id,
        "participant_id": participant.pk,
        "stratum_id": stratum.pk,
        "slot": allocation.slot,
        "arm_id": allocation.arm_id,
        "randomization_number": allocation.randomization_number,
        "confirmation_code": allocation.confirmation_code,
        "allocated_at": when,
        "allocated_by_id": by,
        "in_error": False,
        "in_error_reason": "",
    }
    allocation_values = [columns[name] for name in sql.allocation_columns]
    participant_values = [
        Participant.Status.RANDOMIZED.value,
        ops.adapt_datefield_value(participant.randomized_on),
        ops.adapt_datefield_value(baseline_completed_on),
        participant.pk,
    ]
    allocation_history = [when, "", "+", by]
    participant_history = [when, reason, "~", by]
    advance = [stratum.next_slot + 1, stratum.pk]
    if sql.one_statement:
        sql.execute(
            cursor,
            "write",
            [
                *allocation_values,
                *allocation_history,
                *advance,
                *participant_values,
                *participant_history,
            ],
        )
        return cursor.fetchone()[0]
    cursor.execute(sql.insert_allocation, allocation_values)
    pk = cursor.fetchone()[0]
    cursor.execute(sql.allocation_history, [*allocation_history, pk])
    cursor.execute(sql.notice, [pk])
    cursor.execute(sql.advance, advance)
    cursor.execute(sql.update_participant, participant_values)
    cursor.execute(sql.participant_history, [*participant_history, participant.pk])
    return pk


def _send_now(allocation_pk):
    """After commit, without a broker. The allocation stands whatever happens here: a failure
    is logged and the notice stays in the outbox, never raised into the phone desk."""
    try:
        send_notice(allocation_pk)
    except Exception:
        logger.exception("Allocation notice %s could not be sent", allocation_pk)


def randomize(participant, *, by, baseline_completed_on=None):
    """Allocate the participant; a repeated call returns the allocation already made (to a user
    who may randomize at the participant's site, and nobody else). `baseline_completed_on`: the
    baseline date the centre reports on the same call, written in the allocation's transaction
    (both or neither). Every precondition (check_can_randomize) is asked in the transaction,
    under the participant's row lock."""
    if not access.has(by, Perm.RANDOMIZE, participant.trial, participant.site):
        raise Refused(_("You are not a coordinator for this participant's site."))
    if participant.status == Participant.Status.RANDOMIZED:
        return allocation_of(participant)
    if baseline_completed_on is not None:
        participant.baseline_completed_on = baseline_completed_on
    for attempt in range(3):
        try:
            return _randomize_once(participant, by=by, baseline_completed_on=baseline_completed_on)
        except IntegrityError:
            # Two requests for one participant raced past the first check, or a random
            # randomization number collided: the retry returns or makes exactly one allocation.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@writes_clinical_data("randomization.mark_in_error", lambda a: Scope.of(a["allocation"]))
@transaction.atomic
def mark_in_error(allocation, *, by, reason):
    """Flag an allocation as made in error. It stays, with its slot, in the sequence."""
    trial = allocation.trial
    if not access.has(by, Perm.RANDOMIZE, trial, allocation.participant.site):
        raise Refused(_("You are not a coordinator for this participant's site."))
    if not reason.strip():
        raise Refused(_("Say why the allocation was made in error."))
    allocation = Allocation.objects.select_for_update().get(pk=allocation.pk)
    allocation.in_error = True
    allocation.in_error_reason = reason.strip()
    attribute(allocation, by=by, reason=reason).save(update_fields=["in_error", "in_error_reason"])
    return allocation


# --- Notification ----------------------------------------------------------------------------

# Unblinded staff of the site who hear of each allocation. Blinded roles never do.
# Who hears of an allocation: the site's IMR facilitators, of participants allocated to the
# intervention, so that they invite them to a group. Nobody else: the coordinator who
# randomized read the arm back on the phone, and a recruiter's inbox holding every arm of the
# site in order would be the allocation history the phone desk no longer shows (DOMAIN 10).
NOTIFIED_ROLES = (Role.FACILITATOR,)
# The same, as the gate asks it when the notice goes out (imrtrial.outbox.refusal).
NOTICE_RULE = outbox.Rule(perms=(Perm.LOG_ATTENDANCE,), reveals_allocation=True)


def notice_recipients(allocation):
    """Users holding a notified role at the participant's site now, for an allocation to the
    intervention (the gate has the last word, in send_allocation_notice)."""
    if not allocation.arm.is_intervention:
        return []
    site = allocation.participant.site
    memberships = Membership.objects.filter(
        Q(site=site) | Q(site__isnull=True),
        trial=allocation.trial,
        role__in=NOTIFIED_ROLES,
        active=True,
        user__is_active=True,
    ).select_related("user")
    return [m.user for m in memberships]


# Sends of one notice before it is given up (the Celery task it replaces retried five times).
NOTICE_ATTEMPTS = 5


def pending_notices():
    return AllocationNotice.objects.filter(sent_at__isnull=True, attempts__lt=NOTICE_ATTEMPTS)


def send_pending_notices(limit=200):
    """The sweep (randomization.tasks.send_allocation_notices, every minute): send each notice
    still waiting; returns how many went."""
    keys = pending_notices().order_by("pk").values_list("pk", flat=True)[:limit]
    return sum(send_notice(pk) for pk in keys)


@transaction.atomic
def send_notice(allocation_pk):
    """Send one waiting notice and mark it sent, holding its row (SKIP LOCKED: a sweep that
    overlaps another leaves it alone); 1 if it went. A mail failure is counted on the row, which
    the next sweep tries again."""
    notice = pending_notices().select_for_update(skip_locked=True).filter(pk=allocation_pk).first()
    if notice is None:
        return 0  # sent, given up, or another sweep holds it
    try:
        # In a savepoint: whatever fails in the send (the mail server, an address, a template,
        # a query) is counted on this row and the sweep goes on to the next notice, instead of
        # stopping at this one every minute, for good.
        with transaction.atomic():
            send_allocation_notice(allocation_pk)
    except Exception as exc:
        notice.attempts += 1
        notice.last_error = str(exc)[:300]
        notice.save(update_fields=["attempts", "last_error"])
        logger.warning("Allocation notice %s not sent: %s", allocation_pk, exc, exc_info=True)
        return 0
    notice.sent_at = timezone.now()
    notice.save(update_fields=["sent_at"])
    return 1


def send_allocation_notice(allocation_pk):
    """Runs in the sweep (send_notice), after commit and on every retry: recipients and the
    gate are asked then, so a role withdrawn since the allocation was made gets nothing."""
    allocation = Allocation.objects.select_related(
        "trial", "participant", "participant__site", "arm"
    ).get(pk=allocation_pk)
    if allocation.in_error or allocation.participant.status in Participant.FOLLOW_UP_ENDED:
        # Flagged in error, or the participant left, before the sweep came: no one is to be
        # invited to a group.
        logger.info("Allocation notice %s not sent: no longer stands", allocation_pk)
        return 0

    def message():  # in each recipient's language (outbox.send_each)
        subject = _("[%(trial)s] Randomization %(number)s") % {
            "trial": allocation.trial.name,
            "number": allocation.randomization_number,
        }
        body = render_to_string("randomization/allocation_notice.txt", {"a": allocation})
        return subject, body

    return outbox.send_each(
        notice_recipients(allocation),
        message,
        trial=allocation.trial,
        site=allocation.participant.site,
        rule=NOTICE_RULE,
    )


@writes_clinical_data("randomization.record_baseline", lambda a: Scope.of(a["participant"]))
@transaction.atomic
def record_baseline(participant, *, by, completed_on):
    """Record the baseline date the centre reports at the phone desk (before randomizing)."""
    if not access.has(by, Perm.RANDOMIZE, participant.trial, participant.site):
        raise Refused(_("You are not a coordinator for this participant's site."))
    participant = Participant.objects.select_for_update(no_key=True).get(pk=participant.pk)
    participant.baseline_completed_on = completed_on
    attribute(participant, by=by, reason="baseline date reported at the phone desk").save(
        update_fields=["baseline_completed_on"]
    )
    return participant
