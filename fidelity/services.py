"""IMR groups, sessions, attendance and fidelity ratings: every write goes through here.

Contract:
- Every function takes the acting user as keyword `by` and asks imrtrial.access first: the user
  must see allocation data at the group's site and hold the action's permission there
  (log_attendance for groups, members, sessions and attendance; rate_fidelity for assessments
  and ratings). A refusal raises Refused with a message the facilitator or rater can act on, and
  writes nothing: every check comes before the first write, and each function is one transaction.
- Contamination guard: only participants of the group's site, randomized to the intervention
  arm (allocation not flagged in error) and not withdrawn, may join a group; attendance is
  recorded only for members of the group on the session's date.
- Two-rater protocol: two raw ratings by different raters, neither of whom facilitates the group
  or (unless the trial's rules allow it) holds a role at its site; then one consensus rating by
  one of the two. Raw ratings stay; the consensus is the score of record.
- Writes name the acting user (and the reason, where a recorded value changes) to
  simple-history through imrtrial.audit.attribute.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access, outbox
from imrtrial.audit import attribute
from imrtrial.errors import Refused
from imrtrial.i18n_text import short_date
from imrtrial.locking import Scope, writes_clinical_data
from imrtrial.models import Membership, Participant, Perm, Role
from randomization.services import allocation_of

from . import rules
from .models import (
    Attendance,
    AttendanceReminder,
    FidelityAssessment,
    FidelityRating,
    FollowUpCall,
    GroupMembership,
    ImrGroup,
    Module,
    Session,
)


def _require(by, perm, trial, site):
    if not access.may_do_unblinded(by, perm, trial, site):
        if perm == Perm.LOG_ATTENDANCE:
            message = _("You may not log IMR attendance at %(site)s.")
        else:
            message = _("You may not rate fidelity at %(site)s.")
        raise Refused(message % {"site": site.name})


def _locked(group):
    # One writer per group at a time: capacity and "one session per date" are checked, then
    # written, under this lock (the unique constraints are the backstop).
    return ImrGroup.objects.select_for_update().select_related("trial", "site").get(pk=group.pk)


# --- Groups and members ----------------------------------------------------------------------


@writes_clinical_data("fidelity.create_group", lambda a: Scope.of(a["trial"]))
@transaction.atomic
def create_group(
    trial,
    site,
    *,
    by,
    name,
    facilitators,
    start_date,
    planned_sessions,
    capacity,
    schedule="",
    session_minutes=60,
    enrolment=ImrGroup.Enrolment.CLOSED,
):
    if site.trial_id != trial.pk:
        raise Refused(_("That site does not belong to this trial."))
    _require(by, Perm.LOG_ATTENDANCE, trial, site)
    facilitators = list(dict.fromkeys(facilitators))
    if not 2 <= len(facilitators) <= 3:
        raise Refused(_("A group has two or three facilitators."))
    for user in facilitators:
        if not access.has(user, Perm.LOG_ATTENDANCE, trial, site):
            raise Refused(
                _("%(user)s is not an IMR facilitator at %(site)s.")
                % {"user": user.get_username(), "site": site.name}
            )
    name = name.strip()
    if not name:
        raise Refused(_("Give the group a name."))
    if ImrGroup.objects.filter(trial=trial, name=name).exists():
        raise Refused(_("A group named “%(name)s” already exists in this trial.") % {"name": name})
    if planned_sessions < 1 or capacity < 1 or session_minutes < 1:
        raise Refused(_("Planned sessions, capacity and session length must be at least 1."))
    group = ImrGroup(
        trial=trial,
        site=site,
        name=name,
        start_date=start_date,
        planned_sessions=planned_sessions,
        capacity=capacity,
        schedule=schedule.strip(),
        session_minutes=session_minutes,
        enrolment=enrolment,
    )
    attribute(group, by=by).save()
    group.facilitators.set(facilitators)
    return group


def _members_now(group):
    memberships = GroupMembership.objects.filter(group=group).current()
    return list(Participant.objects.filter(imr_memberships__in=memberships))


# Ending the group ends its members' memberships: their casebooks change too.
@writes_clinical_data(
    "fidelity.end_group", lambda a: Scope.of(a["group"], _members_now(a["group"]))
)
@transaction.atomic
def end_group(group, *, by, on, reason):
    """End the group before its planned sessions: its members leave on `on`; no session,
    member or reminder comes after; its planned sessions become the sessions it held."""
    _require(by, Perm.LOG_ATTENDANCE, group.trial, group.site)
    group = _locked(group)
    reason = reason.strip()
    if group.ended_on:
        raise Refused(
            _("%(group)s already ended on %(ended_on)s.")
            % {"group": group.name, "ended_on": short_date(group.ended_on)}
        )
    if not reason:
        raise Refused(_("Give the reason the group ended early."))
    if len(reason) > ImrGroup._meta.get_field("ended_reason").max_length:
        raise Refused(_("Keep the reason to 300 characters."))
    if on > timezone.localdate():
        raise Refused(_("A group cannot be ended on a future date."))
    if on < group.start_date:
        raise Refused(
            _("%(group)s starts on %(start_date)s; it cannot end before.")
            % {"group": group.name, "start_date": short_date(group.start_date)}
        )
    if last := Session.objects.filter(group=group, date__gt=on).order_by("-date").first():
        raise Refused(
            _("A session of %(group)s is logged on %(date)s, after that date.")
            % {"group": group.name, "date": short_date(last.date)}
        )
    current = list(
        GroupMembership.objects.filter(group=group).current().select_related("participant")
    )
    if late := sorted(m.participant.participant_id for m in current if m.joined_on > on):
        raise Refused(_("Joined after that date: %(late)s.") % {"late": ", ".join(late)})
    for membership in current:
        membership.left_on = on
        attribute(membership, by=by, reason=f"The group ended: {reason}").save()
    group.ended_on, group.ended_reason = on, reason
    attribute(group, by=by, reason=reason).save()
    # Reminders already queued for weeks after the end are dropped, as the outbox drops lines
    # it may no longer send (kept, with the reason).
    outbox.pending(AttendanceReminder).filter(group=group, expected_on__gt=on).update(
        dropped_at=timezone.now(), last_error="the group ended early"
    )
    return group


def check_may_join(group, participant):
    """The contamination guard: why this participant may not join the group, or None."""
    pid = participant.participant_id
    if participant.trial_id != group.trial_id:
        return _("%(pid)s is not a participant of this trial.") % {"pid": pid}
    if participant.site_id != group.site_id:
        return _(
            "%(pid)s belongs to %(site)s; this group meets at %(group_site)s. "
            "Only participants of the group's site may join."
        ) % {"pid": pid, "site": participant.site.name, "group_site": group.site.name}
    allocation = allocation_of(participant)
    if allocation is None:
        return _(
            "%(pid)s has not been randomized: only participants randomized to IMR may join."
        ) % {"pid": pid}
    if allocation.in_error:
        return _("%(pid)s's allocation is flagged as made in error, so %(pid)s may not join.") % {
            "pid": pid
        }
    if not allocation.arm.is_intervention:
        return _(
            "%(pid)s was randomized to %(arm)s: only participants randomized to "
            "the intervention may join an IMR group."
        ) % {"pid": pid, "arm": allocation.arm.label}
    if participant.withdrawals.exists():
        return _("%(pid)s has withdrawn from the intervention.") % {"pid": pid}
    return None


@writes_clinical_data("fidelity.add_member", lambda a: Scope.of(a["group"], [a["participant"]]))
@transaction.atomic
def add_member(group, participant, *, by, joined_on):
    _require(by, Perm.LOG_ATTENDANCE, group.trial, group.site)
    group = _locked(group)
    if group.ended_on:
        raise Refused(
            _("%(group)s ended on %(ended_on)s; no one joins it now.")
            % {"group": group.name, "ended_on": short_date(group.ended_on)}
        )
    if problem := check_may_join(group, participant):
        raise Refused(problem)
    pid = participant.participant_id
    if joined_on > timezone.localdate():
        raise Refused(_("The joining date cannot be in the future."))
    if participant.randomized_on and joined_on < participant.randomized_on:
        raise Refused(
            _("%(pid)s was randomized on %(randomized_on)s; they cannot join a group before that.")
            % {"pid": pid, "randomized_on": short_date(participant.randomized_on)}
        )
    if group.enrolment == ImrGroup.Enrolment.CLOSED and joined_on > group.start_date:
        raise Refused(
            _("%(group)s has closed enrolment: members join by its start date, %(start_date)s.")
            % {"group": group.name, "start_date": short_date(group.start_date)}
        )
    current = GroupMembership.objects.current().filter(participant=participant).first()
    if current:
        raise Refused(
            _("%(pid)s is already a member of %(group)s.")
            % {"pid": pid, "group": current.group.name}
        )
    if GroupMembership.objects.filter(group=group, participant=participant).exists():
        raise Refused(
            _("%(pid)s has left %(group)s before and cannot rejoin it.")
            % {"pid": pid, "group": group.name}
        )
    if GroupMembership.objects.current().filter(group=group).count() >= group.capacity:
        raise Refused(
            _("%(group)s is full: its capacity is %(capacity)s.")
            % {"group": group.name, "capacity": group.capacity}
        )
    membership = GroupMembership(group=group, participant=participant, joined_on=joined_on)
    attribute(membership, by=by).save()
    return membership


@writes_clinical_data("fidelity.leave_group", lambda a: Scope.of(a["membership"]))
@transaction.atomic
def leave_group(membership, *, by, left_on, reason=""):
    group = membership.group
    _require(by, Perm.LOG_ATTENDANCE, group.trial, group.site)
    membership = GroupMembership.objects.select_for_update().get(pk=membership.pk)
    pid = membership.participant.participant_id
    if membership.left_on:
        raise Refused(
            _("%(pid)s already left on %(left_on)s.")
            % {"pid": pid, "left_on": short_date(membership.left_on)}
        )
    if left_on > timezone.localdate():
        raise Refused(_("The leaving date cannot be in the future."))
    if left_on < membership.joined_on:
        raise Refused(
            _("%(pid)s joined on %(joined_on)s; they cannot leave before.")
            % {"pid": pid, "joined_on": short_date(membership.joined_on)}
        )
    if Attendance.objects.filter(
        participant=membership.participant, session__group=group, session__date__gt=left_on
    ).exists():
        raise Refused(
            _("%(pid)s has attendance recorded after %(left_on)s.")
            % {"pid": pid, "left_on": short_date(left_on)}
        )
    membership.left_on = left_on
    attribute(membership, by=by, reason=reason).save(update_fields=["left_on"])
    return membership


# --- Sessions and attendance -----------------------------------------------------------------


def _check_modules(modules):
    if not modules:
        raise Refused(_("Choose the module(s) the session covered."))
    unknown = [m for m in modules if m not in Module.values]
    if unknown:
        raise Refused(
            _("Unknown module(s): %(unknown)s.") % {"unknown": ", ".join(map(str, unknown))}
        )


@writes_clinical_data(
    "fidelity.log_session", lambda a: Scope.of(a["group"], list(a.get("attendance") or ()))
)
@transaction.atomic
def log_session(
    group,
    *,
    by,
    date,
    modules,
    duration_minutes,
    facilitators_present,
    attendance,
    notes="",
):
    """Log a session and every member's attendance at it, whole or not at all.

    `attendance` maps each Participant who was a member on `date` to an Attendance.Status."""
    _require(by, Perm.LOG_ATTENDANCE, group.trial, group.site)
    group = _locked(group)
    if date > timezone.localdate():
        raise Refused(_("A session cannot be logged for a future date."))
    if date < group.start_date:
        raise Refused(
            _("%(group)s starts on %(start_date)s; no session before that.")
            % {"group": group.name, "start_date": short_date(group.start_date)}
        )
    if group.ended_on and date > group.ended_on:
        raise Refused(
            _("%(group)s ended on %(ended_on)s; no session after that.")
            % {"group": group.name, "ended_on": short_date(group.ended_on)}
        )
    if Session.objects.filter(group=group, date=date).exists():
        raise Refused(
            _("A session on %(date)s is already logged for %(group)s.")
            % {"date": short_date(date), "group": group.name}
        )
    modules = [m for m in Module.values if m in set(modules)]  # curriculum order, no repeats
    _check_modules(modules)
    if not 1 <= duration_minutes <= 600:
        raise Refused(_("The session length must be between 1 and 600 minutes."))
    facilitators = set(group.facilitators.all())
    present = list(dict.fromkeys(facilitators_present))
    if not present:
        raise Refused(_("Tick the facilitator(s) present."))
    strangers = [u.get_username() for u in present if u not in facilitators]
    if strangers:
        raise Refused(
            _("Not a facilitator of %(group)s: %(strangers)s.")
            % {"group": group.name, "strangers": ", ".join(strangers)}
        )
    members = {
        m.participant
        for m in GroupMembership.objects.on(date).filter(group=group).select_related("participant")
    }
    outsiders = sorted(p.participant_id for p in attendance if p not in members)
    if outsiders:
        raise Refused(
            _(
                "Not a member of %(group)s on %(date)s: %(outsiders)s. Attendance is recorded "
                "for members only."
            )
            % {"group": group.name, "date": short_date(date), "outsiders": ", ".join(outsiders)}
        )
    missing = sorted(p.participant_id for p in members if p not in attendance)
    if missing:
        raise Refused(
            _("Record attendance for every member; missing: %(missing)s.")
            % {"missing": ", ".join(missing)}
        )
    bad = sorted(p.participant_id for p, s in attendance.items() if s not in Attendance.Status)
    if bad:
        raise Refused(
            _("Choose attended, absent, excused or catch-up for %(bad)s.") % {"bad": ", ".join(bad)}
        )
    session = Session(
        group=group,
        date=date,
        modules=modules,
        duration_minutes=duration_minutes,
        notes=notes.strip(),
        recorded_by=by,
    )
    try:
        with transaction.atomic():
            attribute(session, by=by).save()
    except IntegrityError:  # the lock makes this unlikely; the constraint makes it safe
        raise Refused(
            _("A session on %(date)s is already logged for %(group)s.")
            % {"date": short_date(date), "group": group.name}
        ) from None
    session.facilitators_present.set(present)
    for participant, status in sorted(attendance.items(), key=lambda kv: kv[0].participant_id):
        row = Attendance(session=session, participant=participant, status=status)
        attribute(row, by=by).save()
    return session


@writes_clinical_data(
    "fidelity.record_attendance", lambda a: Scope.of(a["session"], [a["participant"]])
)
@transaction.atomic
def record_attendance(session, participant, *, by, status, reason):
    """Change one member's recorded attendance, e.g. absent -> catch-up after an individual
    session on the ward. The reason is kept in the history."""
    group = session.group
    _require(by, Perm.LOG_ATTENDANCE, group.trial, group.site)
    row = (
        Attendance.objects.select_for_update()
        .filter(session=session, participant=participant)
        .first()
    )
    if row is None:
        raise Refused(
            _("%(pid)s was not a member of %(group)s on %(date)s.")
            % {
                "pid": participant.participant_id,
                "group": group.name,
                "date": short_date(session.date),
            }
        )
    if status not in Attendance.Status:
        raise Refused(_("Choose attended, absent, excused or catch-up."))
    if not reason.strip():
        raise Refused(_("Give the reason for the change."))
    if row.status != status:
        row.status = status
        attribute(row, by=by, reason=reason).save(update_fields=["status"])
    return row


@writes_clinical_data(
    "fidelity.record_follow_up_call", lambda a: Scope.of(a["session"], [a["participant"]])
)
@transaction.atomic
def record_follow_up_call(session, participant, *, by, called_on, outcome):
    group = session.group
    _require(by, Perm.LOG_ATTENDANCE, group.trial, group.site)
    missed = Attendance.objects.filter(
        session=session,
        participant=participant,
        status__in=[Attendance.Status.ABSENT, Attendance.Status.EXCUSED],
    ).exists()
    if not missed:
        raise Refused(_("%(pid)s did not miss this session.") % {"pid": participant.participant_id})
    if called_on > timezone.localdate():
        raise Refused(_("The call date cannot be in the future."))
    if called_on < session.date:
        raise Refused(_("The call comes after the missed session."))
    if not outcome.strip():
        raise Refused(_("Write down what came of the call."))
    call = FollowUpCall(
        session=session,
        participant=participant,
        called_on=called_on,
        outcome=outcome.strip(),
        called_by=by,
    )
    attribute(call, by=by).save()
    return call


# --- Fidelity --------------------------------------------------------------------------------


def rater_problem(group, user):
    """Why the user may not rate this group, or None."""
    trial, site = group.trial, group.site
    if not access.may_do_unblinded(user, Perm.RATE_FIDELITY, trial, site):
        return _("You are not a fidelity rater for %(site)s.") % {"site": site.name}
    if group.facilitators.filter(pk=user.pk).exists():
        return _("You facilitate this group, so you may not rate it.")
    # A rater's own site is where they work: any role there other than the fidelity-rater role
    # itself, which only says where they may rate.
    own_site = (
        Membership.objects.filter(user=user, trial=trial, site=site, active=True)
        .exclude(role=Role.FIDELITY_RATER)
        .exists()
    )
    if own_site and not rules.for_trial(trial).raters_may_rate_own_site:
        return _("You hold a role at %(site)s; fidelity raters rate groups of other sites.") % {
            "site": site.name
        }
    return None


def _require_rater(group, by):
    if problem := rater_problem(group, by):
        raise Refused(problem)


@writes_clinical_data("fidelity.create_assessment", lambda a: Scope.of(a["group"]))
@transaction.atomic
def create_assessment(group, *, by, kind, date, data_sources, report=""):
    _require_rater(group, by)
    group = _locked(group)
    if kind not in FidelityAssessment.Kind:
        raise Refused(_("Choose a mid-way or an end assessment."))
    if date > timezone.localdate():
        raise Refused(_("The assessment date cannot be in the future."))
    if date < group.start_date:
        raise Refused(
            _("%(group)s starts on %(start_date)s.")
            % {"group": group.name, "start_date": short_date(group.start_date)}
        )
    sources = [s for s in FidelityAssessment.DataSource.values if s in set(data_sources)]
    if not sources or len(sources) != len(set(data_sources)):
        raise Refused(_("Tick the data sources the assessment used."))
    if FidelityAssessment.objects.filter(group=group, kind=kind).exists():
        if kind == FidelityAssessment.Kind.MIDWAY:
            message = _("%(group)s already has a mid-way assessment.")
        else:
            message = _("%(group)s already has an end assessment.")
        raise Refused(message % {"group": group.name})
    assessment = FidelityAssessment(
        group=group,
        kind=kind,
        date=date,
        data_sources=sources,
        report=report.strip(),
        created_by=by,
    )
    attribute(assessment, by=by).save()
    return assessment


def _clean_scores(assessment, scores):
    """{item number: score} with int keys, or Refused naming every problem."""
    try:
        cleaned = {int(item): value for item, value in scores.items()}
    except (TypeError, ValueError):
        raise Refused(_("Items are numbered 1 to 13.")) from None
    if problems := rules.check_scores(assessment.kind, cleaned):
        raise Refused(" ".join(problems))
    return {str(item): cleaned[item] for item in sorted(cleaned)}


def _lock_assessment(assessment):
    # Serializes the two raters and the consensus on one assessment.
    return (
        FidelityAssessment.objects.select_for_update().select_related("group").get(pk=assessment.pk)
    )


@writes_clinical_data("fidelity.submit_rating", lambda a: Scope.of(a["assessment"]))
@transaction.atomic
def submit_rating(assessment, *, by, scores):
    """A rater's independent raw rating. Once submitted it is not changed."""
    _require_rater(assessment.group, by)
    assessment = _lock_assessment(assessment)
    ratings = list(assessment.ratings.all())
    if any(r.is_consensus for r in ratings):
        raise Refused(_("The consensus is recorded; no more raw ratings."))
    if any(r.rater_id == by.pk for r in ratings):
        raise Refused(_("You have already rated this assessment."))
    if len(ratings) >= FidelityRating.RAW_RATINGS:
        raise Refused(_("Both raw ratings are in."))
    rating = FidelityRating(
        assessment=assessment, rater=by, scores=_clean_scores(assessment, scores)
    )
    attribute(rating, by=by).save()
    return rating


@writes_clinical_data("fidelity.submit_consensus", lambda a: Scope.of(a["assessment"]))
@transaction.atomic
def submit_consensus(assessment, *, by, scores, report=None):
    """The agreed rating, by one of the two raw raters after both raw ratings are in."""
    _require_rater(assessment.group, by)
    assessment = _lock_assessment(assessment)
    ratings = list(assessment.ratings.all())
    raw = [r for r in ratings if not r.is_consensus]
    if any(r.is_consensus for r in ratings):
        raise Refused(_("The consensus is already recorded."))
    if len(raw) < 2:
        raise Refused(
            _("The consensus comes after both raw ratings; %(n)s of 2 are in.") % {"n": len(raw)}
        )
    if by.pk not in {r.rater_id for r in raw}:
        raise Refused(_("The consensus is entered by one of the two raters."))
    rating = FidelityRating(
        assessment=assessment,
        rater=by,
        is_consensus=True,
        scores=_clean_scores(assessment, scores),
    )
    attribute(rating, by=by).save()
    if report is not None and report.strip() != assessment.report:
        assessment.report = report.strip()
        attribute(assessment, by=by, reason="report written with the consensus").save(
            update_fields=["report"]
        )
    return rating
