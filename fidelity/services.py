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

from imrtrial import access, outbox
from imrtrial.audit import attribute
from imrtrial.errors import Refused
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
        what = "log IMR attendance" if perm == Perm.LOG_ATTENDANCE else "rate fidelity"
        raise Refused(f"You may not {what} at {site.name}.")


def _locked(group):
    # One writer per group at a time: capacity and "one session per date" are checked, then
    # written, under this lock (the unique constraints are the backstop).
    return ImrGroup.objects.select_for_update().select_related("trial", "site").get(pk=group.pk)


def _day(date):
    return f"{date:%Y-%m-%d}"


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
        raise Refused("That site does not belong to this trial.")
    _require(by, Perm.LOG_ATTENDANCE, trial, site)
    facilitators = list(dict.fromkeys(facilitators))
    if not 2 <= len(facilitators) <= 3:
        raise Refused("A group has two or three facilitators.")
    for user in facilitators:
        if not access.has(user, Perm.LOG_ATTENDANCE, trial, site):
            raise Refused(f"{user.get_username()} is not an IMR facilitator at {site.name}.")
    name = name.strip()
    if not name:
        raise Refused("Give the group a name.")
    if ImrGroup.objects.filter(trial=trial, name=name).exists():
        raise Refused(f"A group named “{name}” already exists in this trial.")
    if planned_sessions < 1 or capacity < 1 or session_minutes < 1:
        raise Refused("Planned sessions, capacity and session length must be at least 1.")
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
        raise Refused(f"{group.name} already ended on {_day(group.ended_on)}.")
    if not reason:
        raise Refused("Give the reason the group ended early.")
    if len(reason) > ImrGroup._meta.get_field("ended_reason").max_length:
        raise Refused("Keep the reason to 300 characters.")
    if on > timezone.localdate():
        raise Refused("A group cannot be ended on a future date.")
    if on < group.start_date:
        raise Refused(f"{group.name} starts on {_day(group.start_date)}; it cannot end before.")
    if last := Session.objects.filter(group=group, date__gt=on).order_by("-date").first():
        raise Refused(f"A session of {group.name} is logged on {_day(last.date)}, after that date.")
    current = list(
        GroupMembership.objects.filter(group=group).current().select_related("participant")
    )
    if late := sorted(m.participant.participant_id for m in current if m.joined_on > on):
        raise Refused(f"Joined after that date: {', '.join(late)}.")
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
        return f"{pid} is not a participant of this trial."
    if participant.site_id != group.site_id:
        return (
            f"{pid} belongs to {participant.site.name}; this group meets at {group.site.name}. "
            "Only participants of the group's site may join."
        )
    allocation = allocation_of(participant)
    if allocation is None:
        return f"{pid} has not been randomized: only participants randomized to IMR may join."
    if allocation.in_error:
        return f"{pid}'s allocation is flagged as made in error, so {pid} may not join."
    if not allocation.arm.is_intervention:
        return (
            f"{pid} was randomized to {allocation.arm.label}: only participants randomized to "
            "the intervention may join an IMR group."
        )
    if participant.withdrawals.exists():
        return f"{pid} has withdrawn from the intervention."
    return None


@writes_clinical_data("fidelity.add_member", lambda a: Scope.of(a["group"], [a["participant"]]))
@transaction.atomic
def add_member(group, participant, *, by, joined_on):
    _require(by, Perm.LOG_ATTENDANCE, group.trial, group.site)
    group = _locked(group)
    if group.ended_on:
        raise Refused(f"{group.name} ended on {_day(group.ended_on)}; no one joins it now.")
    if problem := check_may_join(group, participant):
        raise Refused(problem)
    pid = participant.participant_id
    if joined_on > timezone.localdate():
        raise Refused("The joining date cannot be in the future.")
    if participant.randomized_on and joined_on < participant.randomized_on:
        raise Refused(
            f"{pid} was randomized on {_day(participant.randomized_on)}; "
            "they cannot join a group before that."
        )
    if group.enrolment == ImrGroup.Enrolment.CLOSED and joined_on > group.start_date:
        raise Refused(
            f"{group.name} has closed enrolment: members join by its start date, "
            f"{_day(group.start_date)}."
        )
    current = GroupMembership.objects.current().filter(participant=participant).first()
    if current:
        raise Refused(f"{pid} is already a member of {current.group.name}.")
    if GroupMembership.objects.filter(group=group, participant=participant).exists():
        raise Refused(f"{pid} has left {group.name} before and cannot rejoin it.")
    if GroupMembership.objects.current().filter(group=group).count() >= group.capacity:
        raise Refused(f"{group.name} is full: its capacity is {group.capacity}.")
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
        raise Refused(f"{pid} already left on {_day(membership.left_on)}.")
    if left_on > timezone.localdate():
        raise Refused("The leaving date cannot be in the future.")
    if left_on < membership.joined_on:
        raise Refused(f"{pid} joined on {_day(membership.joined_on)}; they cannot leave before.")
    if Attendance.objects.filter(
        participant=membership.participant, session__group=group, session__date__gt=left_on
    ).exists():
        raise Refused(f"{pid} has attendance recorded after {_day(left_on)}.")
    membership.left_on = left_on
    attribute(membership, by=by, reason=reason).save(update_fields=["left_on"])
    return membership


# --- Sessions and attendance -----------------------------------------------------------------


def _check_modules(modules):
    if not modules:
        raise Refused("Choose the module(s) the session covered.")
    unknown = [m for m in modules if m not in Module.values]
    if unknown:
        raise Refused(f"Unknown module(s): {', '.join(map(str, unknown))}.")


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
        raise Refused("A session cannot be logged for a future date.")
    if date < group.start_date:
        raise Refused(f"{group.name} starts on {_day(group.start_date)}; no session before that.")
    if group.ended_on and date > group.ended_on:
        raise Refused(f"{group.name} ended on {_day(group.ended_on)}; no session after that.")
    if Session.objects.filter(group=group, date=date).exists():
        raise Refused(f"A session on {_day(date)} is already logged for {group.name}.")
    modules = [m for m in Module.values if m in set(modules)]  # curriculum order, no repeats
    _check_modules(modules)
    if not 1 <= duration_minutes <= 600:
        raise Refused("The session length must be between 1 and 600 minutes.")
    facilitators = set(group.facilitators.all())
    present = list(dict.fromkeys(facilitators_present))
    if not present:
        raise Refused("Tick the facilitator(s) present.")
    strangers = [u.get_username() for u in present if u not in facilitators]
    if strangers:
        raise Refused(f"Not a facilitator of {group.name}: {', '.join(strangers)}.")
    members = {
        m.participant
        for m in GroupMembership.objects.on(date).filter(group=group).select_related("participant")
    }
    outsiders = sorted(p.participant_id for p in attendance if p not in members)
    if outsiders:
        raise Refused(
            f"Not a member of {group.name} on {_day(date)}: {', '.join(outsiders)}. "
            "Attendance is recorded for members only."
        )
    missing = sorted(p.participant_id for p in members if p not in attendance)
    if missing:
        raise Refused(f"Record attendance for every member; missing: {', '.join(missing)}.")
    bad = sorted(p.participant_id for p, s in attendance.items() if s not in Attendance.Status)
    if bad:
        raise Refused(f"Choose attended, absent, excused or catch-up for {', '.join(bad)}.")
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
        raise Refused(f"A session on {_day(date)} is already logged for {group.name}.") from None
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
            f"{participant.participant_id} was not a member of {group.name} on "
            f"{_day(session.date)}."
        )
    if status not in Attendance.Status:
        raise Refused("Choose attended, absent, excused or catch-up.")
    if not reason.strip():
        raise Refused("Give the reason for the change.")
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
        raise Refused(f"{participant.participant_id} did not miss this session.")
    if called_on > timezone.localdate():
        raise Refused("The call date cannot be in the future.")
    if called_on < session.date:
        raise Refused("The call comes after the missed session.")
    if not outcome.strip():
        raise Refused("Write down what came of the call.")
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
        return f"You are not a fidelity rater for {site.name}."
    if group.facilitators.filter(pk=user.pk).exists():
        return "You facilitate this group, so you may not rate it."
    # A rater's own site is where they work: any role there other than the fidelity-rater role
    # itself, which only says where they may rate.
    own_site = (
        Membership.objects.filter(user=user, trial=trial, site=site, active=True)
        .exclude(role=Role.FIDELITY_RATER)
        .exists()
    )
    if own_site and not rules.for_trial(trial).raters_may_rate_own_site:
        return f"You hold a role at {site.name}; fidelity raters rate groups of other sites."
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
        raise Refused("Choose a mid-way or an end assessment.")
    if date > timezone.localdate():
        raise Refused("The assessment date cannot be in the future.")
    if date < group.start_date:
        raise Refused(f"{group.name} starts on {_day(group.start_date)}.")
    sources = [s for s in FidelityAssessment.DataSource.values if s in set(data_sources)]
    if not sources or len(sources) != len(set(data_sources)):
        raise Refused("Tick the data sources the assessment used.")
    if FidelityAssessment.objects.filter(group=group, kind=kind).exists():
        label = "a mid-way" if kind == FidelityAssessment.Kind.MIDWAY else "an end"
        raise Refused(f"{group.name} already has {label} assessment.")
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
        raise Refused("Items are numbered 1 to 13.") from None
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
        raise Refused("The consensus is recorded; no more raw ratings.")
    if any(r.rater_id == by.pk for r in ratings):
        raise Refused("You have already rated this assessment.")
    if len(ratings) >= FidelityRating.RAW_RATINGS:
        raise Refused("Both raw ratings are in.")
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
        raise Refused("The consensus is already recorded.")
    if len(raw) < 2:
        raise Refused(f"The consensus comes after both raw ratings; {len(raw)} of 2 are in.")
    if by.pk not in {r.rater_id for r in raw}:
        raise Refused("The consensus is entered by one of the two raters.")
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
