"""CRF services.

Contract: every write is atomic, attributed to a user and checked by imrtrial.access; a form is
validated against its instrument definition before anything is saved and is saved whole or not
at all; after a form is complete every change carries a reason, which the audit trail keeps
with the old and new values; a save based on an outdated version is refused (no lost update).
"""

import datetime
import functools
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access
from imrtrial.audit import ReasonRequired, attribute
from imrtrial.errors import Locked, Refused
from imrtrial.i18n_text import shown
from imrtrial.locking import Scope, check_unlocked, writes_clinical_data
from imrtrial.models import (
    DatabaseLock,
    Participant,
    Perm,
    Timepoint,
    Trial,
    UnblindingIncident,
)
from randomization import export as allocations
from randomization.models import IdentifyingDetails, Withdrawal

from . import registry
from .definitions import Problem, clean, compute_scores
from .models import DataQuery, Death, ExclusionAfterRandomization, FormEntry, Visit

DOUBLE_ENTRY_RATERS = ("self_report", "records")  # paper forms, entered twice
# A locked form refuses a save with the words imrtrial.locking uses for every writer.
FORM_LOCKED = (
    "This form is locked and can no longer change. The data manager can unlock it, with a reason."
)


class FormInvalid(Exception):
    """Field-level errors: {item code or "__all__": message}. Nothing was saved."""

    def __init__(self, errors):
        self.errors = {code: _shown(error) for code, error in errors.items()}
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _shown(error):
    """An entry error in the reader's language (assessments.definitions.Problem)."""
    if isinstance(error, Problem):
        return _(error.message) % error.values if error.values else _(error.message)
    return error


class Conflict(Exception):
    """Someone else saved this form since it was opened."""


class NeedsAcknowledgement(Exception):
    """Data quality rules flag the values (`findings`, each with its code, severity, message
    and the items it is shown beside): nothing was saved. Saving again with the findings
    acknowledged saves, and the history's reason names them."""

    def __init__(self, findings):
        self.findings = findings
        super().__init__("; ".join(f.message for f in findings))


# Checks a later app adds to the save of a complete form (quality.services: the data quality
# rules), so this app needs no import of it: callable(visit, instrument, values, scores) ->
# [finding]. Registered at start-up (the app's ready()).
_save_checks = []


def checks_saves(check):
    _save_checks.append(check)
    return check


# --- Schedule ---------------------------------------------------------------------------------


def visit_dates(timepoint, participant):
    """(target, window start, window end), or None while the anchor date is unknown."""
    if timepoint.anchor == Timepoint.Anchor.ENROLMENT:
        anchor = timezone.localdate(participant.created_at)
    elif timepoint.anchor == Timepoint.Anchor.BASELINE:
        anchor = participant.baseline_completed_on
    else:
        anchor = participant.randomized_on
    if anchor is None:
        return None
    target = anchor + datetime.timedelta(days=timepoint.offset_days)
    return (
        target,
        target - datetime.timedelta(days=timepoint.window_before_days),
        target + datetime.timedelta(days=timepoint.window_after_days),
    )


def schedule_participant_visits(participant):
    """The visits of one participant that are due to exist (idempotent): called by the phone
    desk's services (imrtrial.lifecycle) when the participant is enrolled or randomized, in
    their transaction. Two statements (the missing timepoints, one INSERT of their visits),
    written once per process (_VisitSQL): on the randomization call the ORM's three queries
    and bulk_create were 40% of its CPU (issue 17's profile)."""
    if participant.status in Participant.FOLLOW_UP_ENDED:
        return 0
    sql = _visit_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql.missing, [participant.trial_id, participant.pk])
        rows = []
        for pk, *schedule in cursor.fetchall():
            dates = visit_dates(_Schedule(*schedule), participant)
            if dates:
                rows.append([participant.pk, pk, *dates])
        if rows:
            cursor.execute(*sql.insert(rows))
    return len(rows)


class _Schedule(NamedTuple):
    """What visit_dates reads of a timepoint."""

    anchor: str
    offset_days: int
    window_before_days: int
    window_after_days: int


class _VisitSQL:
    """The two statements of schedule_participant_visits, from the models. A visit is inserted
    as bulk_create would: its participant, timepoint and three dates, every other column its
    field's default (refused here if a column gets a default that is not a constant)."""

    DATED = ("participant", "timepoint", "target_date", "window_start", "window_end")

    def __init__(self):
        q = connection.ops.quote_name
        T, V = Timepoint._meta, Visit._meta

        def c(meta, name):
            return q(meta.get_field(name).column)

        self.missing = (
            f"SELECT t.{q(T.pk.column)}, t.{c(T, 'anchor')}, t.{c(T, 'offset_days')}, "
            f"t.{c(T, 'window_before_days')}, t.{c(T, 'window_after_days')} "
            f"FROM {q(T.db_table)} t WHERE t.{c(T, 'trial')} = %s AND NOT EXISTS ("
            f"SELECT 1 FROM {q(V.db_table)} v WHERE v.{c(V, 'participant')} = %s "
            f"AND v.{c(V, 'timepoint')} = t.{q(T.pk.column)})"
        )
        self._dated = [V.get_field(name) for name in self.DATED]
        rest = [f for f in V.concrete_fields if not f.primary_key and f not in self._dated]
        for field in rest:
            computed = field.has_default() and callable(field.default)
            if computed or getattr(field, "auto_now_add", False):
                raise RuntimeError(f"Visit.{field.name}'s default is not a constant")
        self._defaults = [f.get_db_prep_save(f.get_default(), connection) for f in rest]
        names = ", ".join(q(f.column) for f in [*self._dated, *rest])
        self._row = "(" + ", ".join(["%s"] * (len(self._dated) + len(rest))) + ")"
        # ON CONFLICT: the daily backstop (schedule_visits) may have made one meanwhile.
        self._insert = f"INSERT INTO {q(V.db_table)} ({names}) VALUES {{}} ON CONFLICT DO NOTHING"

    def insert(self, rows):
        """(sql, params) inserting `rows` of (participant pk, timepoint pk, three dates)."""
        params = []
        for row in rows:
            dated = zip(self._dated, row, strict=True)
            params += [f.get_db_prep_save(v, connection) for f, v in dated]
            params += self._defaults
        return self._insert.format(", ".join([self._row] * len(rows))), params


@functools.cache
def _visit_sql():
    return _VisitSQL()


def schedule_visits(trial):
    """Create the visits that are due to exist (idempotent, set-based): enrolment-anchored
    visits for every participant, the others once the participant is randomized. Cheap when
    nothing is missing: one counting query finds the participants short of visits. The daily
    job runs it as the backstop of schedule_participant_visits."""
    timepoints = list(trial.timepoints.all())
    at_enrolment = sum(t.anchor == Timepoint.Anchor.ENROLMENT for t in timepoints)
    short = (
        # A locked casebook gets no visit either: nothing of that participant may change.
        Participant.objects.filter(trial=trial, casebook_locked_at__isnull=True)
        .exclude(status__in=Participant.FOLLOW_UP_ENDED)
        .annotate(n_visits=Count("visits"))
        .filter(
            Q(randomized_on__isnull=True, n_visits__lt=at_enrolment)
            | Q(randomized_on__isnull=False, n_visits__lt=len(timepoints))
        )
    )
    short = list(short)
    if not short:
        return 0
    have = set(
        Visit.objects.filter(participant__in=short).values_list("participant_id", "timepoint_id")
    )
    return _create_missing_visits(short, timepoints, have)


def _create_missing_visits(participants, timepoints, have):
    new = []
    for participant in participants:
        for timepoint in timepoints:
            if (participant.pk, timepoint.pk) in have:
                continue
            dates = visit_dates(timepoint, participant)
            if dates:
                new.append(
                    Visit(
                        participant=participant,
                        timepoint=timepoint,
                        target_date=dates[0],
                        window_start=dates[1],
                        window_end=dates[2],
                    )
                )
    Visit.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


# --- Entry ------------------------------------------------------------------------------------


def entry_kind_for(instrument):
    return (
        FormEntry.Kind.FIRST if instrument.rater in DOUBLE_ENTRY_RATERS else FormEntry.Kind.SINGLE
    )


def check_may_enter(user, visit, instrument):
    if instrument.code not in visit.timepoint.instruments:
        raise Refused(
            _("%(name)s is not due at %(visit)s.")
            % {"name": shown(instrument.name), "visit": visit.timepoint.display_label}
        )
    if not access.may_enter(user, visit.participant, instrument.rater):
        raise Refused(_("You may not enter this form for this participant."))


# The scope is the visit's casebook (and the trial): the form's own lock is asked by save_entry
# itself, on the entry row it holds, which spares a read of that row before the one that
# locks it. No savepoint of its own: the guard's transaction is the one it runs in.
@writes_clinical_data("assessments.save_entry", lambda a: Scope.of(a["visit"]))
@transaction.atomic(savepoint=False)
def save_entry(
    visit,
    instrument_code,
    raw,
    *,
    by,
    kind,
    version=None,
    complete=False,
    reason="",
    acknowledge=None,
    via=FormEntry.EnteredVia.STAFF,
):
    """Validate and save one form entry. Raises FormInvalid, Conflict, ReasonRequired,
    NeedsAcknowledgement or Refused; on any of them nothing is saved.

    `acknowledge` is for a caller that shows the data quality rules' warnings (the entry
    page): False asks the registered save checks about a complete form and raises
    NeedsAcknowledgement if any flags it; True saves anyway and records what was acknowledged
    in the reason. None (imports, a query's answer) asks no rule here: the nightly run finds
    whatever they would.

    `via` is who typed it: staff, or the participant (on a tablet handed over, or from a link:
    selfreport), whose entry is a single entry. A form is answered by the participant or
    entered from paper, never both: the one refuses the other."""
    instrument = registry.get(instrument_code)
    check_may_enter(by, visit, instrument)
    entry = (
        FormEntry.objects.select_for_update(no_key=True)
        .filter(
            participant=visit.participant,
            instrument=instrument.code,
            timepoint=visit.timepoint.code,
            kind=kind,
        )
        .first()
    )
    participant_entry = via in FormEntry.PARTICIPANT_MODES
    if participant_entry and kind != FormEntry.Kind.SINGLE:
        raise Refused(_("A participant's own answers are a single entry."))
    if participant_entry and any(raw.get(i.code) for i in instrument.items if i.type == "text"):
        # The participant knows their arm, and their entry is recorded under the blinded
        # assessor who handed it over: free text from them would reach blinded readers as a
        # blinded author's words (imrtrial.access.text_for). They answer no free text.
        raise Refused(_("A participant's own answers hold no free text."))
    if entry is None:
        if participant_entry or kind != FormEntry.Kind.SINGLE:
            _refuse_paper_beside_participant(visit, instrument, participant_entry)
        if kind == FormEntry.Kind.SECOND:
            first = FormEntry.objects.filter(
                participant=visit.participant,
                instrument=instrument.code,
                timepoint=visit.timepoint.code,
                kind=FormEntry.Kind.FIRST,
            ).first()
            if first is None or first.entered_by_id == by.pk:
                raise Refused(_("The second entry must be made by someone other than the first."))
        entry = FormEntry(
            participant=visit.participant,
            visit=visit,
            instrument=instrument.code,
            instrument_version=instrument.version,
            timepoint=visit.timepoint.code,
            kind=kind,
            entered_by=by,
            entered_via=via,
        )
    else:
        if entry.status == FormEntry.Status.LOCKED:
            # The form's lock (imrtrial.locking), asked on the row this transaction now holds
            # FOR NO KEY UPDATE: the lock action (set_status) takes the same row lock, so a
            # save and a lock of one form happen one after the other, never both.
            raise Locked(FORM_LOCKED)
        if version is not None and _version(version) != entry.version:
            raise Conflict(
                _(
                    "Someone else saved this form after you opened it. Reload it to see their "
                    "changes; your entries were not saved."
                )
            )
        if entry.status != FormEntry.Status.DRAFT and not reason.strip():
            raise ReasonRequired(_("A reason is required to change a completed form."))
        if kind in (FormEntry.Kind.FIRST, FormEntry.Kind.SECOND) and entry.entered_by_id != by.pk:
            raise Refused(_("Each of the two entries is made by one person."))
        if participant_entry and entry.entered_via not in FormEntry.PARTICIPANT_MODES:
            # The participant does not type into answers staff entered.
            raise Refused(_("This form was entered by staff."))
        if (
            not participant_entry
            and entry.entered_via in FormEntry.PARTICIPANT_MODES
            and entry.status == FormEntry.Status.DRAFT
        ):
            # Nor staff into the participant's unfinished answers, which would then pass as
            # the participant's own (the response report's modes). Once complete, a correction
            # needs a reason, as for any entry, and the history keeps who made it.
            raise Refused(_("The participant is still answering this form."))
        if participant_entry and entry.status != FormEntry.Status.DRAFT:
            raise Refused(_("These answers are already complete."))
        if participant_entry:
            entry.entered_via = via  # the mode of the save that finished it
        entry.version += 1
    values, errors = clean(instrument, raw, complete=complete or entry.status != "draft")
    if errors:
        raise FormInvalid(errors)
    scores = compute_scores(instrument, values)
    if acknowledge is not None and (complete or entry.status != FormEntry.Status.DRAFT):
        findings = [f for check in _save_checks for f in check(visit, instrument, values, scores)]
        if findings and not acknowledge:
            raise NeedsAcknowledgement(findings)
        if findings:
            noted = ", ".join(f.code for f in findings)
            reason = f"{reason.strip()} (data quality warnings acknowledged: {noted})".strip()
    unverified = entry.status == FormEntry.Status.VERIFIED and values != entry.values
    entry.values = values
    entry.scores = scores
    if complete and entry.status == FormEntry.Status.DRAFT:
        entry.status = FormEntry.Status.COMPLETE
    if unverified:
        # A verified form that changes is no longer verified: it returns to complete, to be
        # verified again; the reason for the change is kept with it.
        entry.status = FormEntry.Status.COMPLETE
        reason = f"{reason.strip()} (was verified: back to complete)"
    attribute(entry, by=by, reason=reason).save()
    if entry.counts:
        _update_visit(visit, by=by)
    return entry


def _refuse_paper_beside_participant(visit, instrument, participant_entry):
    """A participant's own entry and a paper entry (first, second, reconciled) of one form
    exclude each other, so which answers count is never in doubt: whichever was started first
    stands. (A staff single entry beside a paper one is older and stays allowed: the
    reconciled entry replaces it, FormEntryQuerySet.counting.)

    Both kinds of writer take the visit's row lock first, so that two begun at once ask one
    after the other, the second seeing the first's committed row (each statement here reads
    afresh, READ COMMITTED): without it both checks passed and both entries stood."""
    list(Visit.objects.select_for_update(no_key=True).filter(pk=visit.pk).values_list("pk"))
    same_form = FormEntry.objects.filter(
        participant=visit.participant,
        instrument=instrument.code,
        timepoint=visit.timepoint.code,
    )
    if participant_entry:
        if same_form.exclude(kind=FormEntry.Kind.SINGLE).exists():
            raise Refused(_("This form is being entered from paper."))
    elif same_form.filter(
        kind=FormEntry.Kind.SINGLE, entered_via__in=FormEntry.PARTICIPANT_MODES
    ).exists():
        raise Refused(_("The participant answered this form themselves."))


def _version(text):
    """The version a form was opened at, as posted back by the browser."""
    try:
        return int(text)
    except (TypeError, ValueError):
        raise Conflict(_("This form was not opened here: reload it and enter again.")) from None


def _update_visit(visit, *, by):
    """A visit is done when every form due at it has a counting entry."""
    if visit.completed_on is not None:
        return  # done already: it stays done
    due = set(visit.timepoint.instruments)
    done = set(
        FormEntry.objects.counting()
        .filter(participant=visit.participant, timepoint=visit.timepoint.code)
        .values_list("instrument", flat=True)
    )
    if due <= done:
        today = timezone.localdate()
        visit.completed_on = today
        visit.deviation = not visit.window_start <= today <= visit.window_end
        attribute(visit, by=by, reason="all forms complete").save(
            update_fields=["completed_on", "deviation"]
        )
        if visit.timepoint.anchor == Timepoint.Anchor.ENROLMENT:
            participant = visit.participant
            participant.baseline_completed_on = today
            Participant.objects.filter(pk=participant.pk).update(baseline_completed_on=today)
            if participant.randomized_on is not None:
                # Visits anchored on the baseline date can be dated now.
                schedule_participant_visits(participant)


@writes_clinical_data("assessments.set_status", lambda a: Scope.of(a["entry"]))
@transaction.atomic
def set_status(entry, status, *, by):
    """Verify or lock a complete form (data manager)."""
    if not access.has(by, Perm.VERIFY_FORMS, entry.participant.trial, entry.participant.site):
        raise Refused(_("You may not verify or lock forms."))
    entry = FormEntry.objects.select_for_update(no_key=True).get(pk=entry.pk)
    allowed = {
        FormEntry.Status.VERIFIED: {FormEntry.Status.COMPLETE},
        FormEntry.Status.LOCKED: {FormEntry.Status.COMPLETE, FormEntry.Status.VERIFIED},
    }
    if entry.status not in allowed.get(status, ()):
        raise Refused(
            _("A %(status)s form cannot become %(new)s.")
            % {"status": _(entry.get_status_display()).lower(), "new": status}
        )
    if waiting := list(DataQuery.objects.open().filter(entry=entry).values_list("pk", flat=True)):
        numbers = ", ".join(f"#{pk}" for pk in sorted(waiting))
        raise Refused(
            (
                _(
                    "This form has open data queries (%(numbers)s): close or cancel them before "
                    "it is verified."
                )
                if status == FormEntry.Status.VERIFIED
                else _(
                    "This form has open data queries (%(numbers)s): close or cancel them before "
                    "it is locked."
                )
            )
            % {"numbers": numbers}
        )
    entry.status = status
    attribute(entry, by=by, reason=status).save(update_fields=["status", "updated_at"])
    return entry


# --- Locks -----------------------------------------------------------------------------------
# Locking and unlocking are the data manager's, with a reason, audited on the locked row's
# history. They are not writers of clinical data (imrtrial.locking): unlocking a form must pass
# its own lock; each checks the levels above it instead.


def _require_data_manager(by, trial, site=None):
    if not access.has(by, Perm.VERIFY_FORMS, trial, site):
        raise Refused(_("Only a data manager locks and unlocks data."))


def _require_trial_data_manager(by, trial):
    """The database is the whole trial's: a data manager of some sites neither locks nor
    unlocks it."""
    _require_data_manager(by, trial)
    if not access.has_everywhere(by, Perm.VERIFY_FORMS, trial):
        raise Refused(_("Only a data manager of every site locks and unlocks the database."))


def _reason(reason):
    if not reason.strip():
        raise Refused(_("Give the reason."))
    return _storable(reason.strip())


def _storable(text):
    """Text as PostgreSQL can store it: a NUL character is refused, not a server error."""
    if "\x00" in text:
        raise Refused(_("The text contains a character that cannot be stored (NUL)."))
    return text


def lock_blockers(trial, participant=None):
    """What must be resolved before the trial's database (or one participant's casebook) is
    locked: [(what, how many)]; empty when it may be locked."""
    entries = FormEntry.objects.filter(participant__trial=trial)
    if participant is not None:
        entries = entries.filter(participant=participant)
    drafts = entries.filter(status=FormEntry.Status.DRAFT).count()
    double = entries.filter(kind=FormEntry.Kind.FIRST).exclude(
        Exists(
            FormEntry.objects.filter(
                participant=OuterRef("participant"),
                instrument=OuterRef("instrument"),
                timepoint=OuterRef("timepoint"),
                kind=FormEntry.Kind.FINAL,
            )
        )
    )
    blockers = [
        ("forms in draft", drafts),
        ("paper forms awaiting reconciliation", double.count()),
    ]
    for name, count in lock_blocker_counts(trial, participant):
        blockers.append((name, count))
    return [(what, n) for what, n in blockers if n]


# Later rules that block a lock (open data queries: assessments.queries; an unsigned casebook
# where the trial asks for a signature: signoff) register here, each in two forms of one rule.
_lock_blocker_sources = []  # [(count, among)]


def blocks_locking(*, among):
    """Register a rule that blocks locking. The decorated `count(trial, participant)` gives
    [(what, how many)] for the database (participant None) or one casebook, as lock_blockers
    reports it; `among(trial, ids)` gives the participants among `ids` whose casebook the rule
    blocks, in a bounded number of queries, for the queue's casebooks ready to lock."""

    def register(count):
        _lock_blocker_sources.append((count, among))
        return count

    return register


def lock_blocker_counts(trial, participant):
    return [pair for count, _ in _lock_blocker_sources for pair in count(trial, participant)]


def casebooks_blocked(trial, ids):
    """The participants among `ids` whose casebook a registered rule blocks."""
    ids = list(ids)
    blocked = set()
    for _count, among in _lock_blocker_sources:
        blocked |= set(among(trial, ids)) if ids else set()
    return blocked


@transaction.atomic
def lock_database(trial, *, by, reason):
    """Lock the trial's database: from now on every service that writes clinical data refuses.
    Recruitment must be closed, and nothing may be left to resolve (lock_blockers)."""
    _require_trial_data_manager(by, trial)
    reason = _reason(reason)
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    if trial.status == Trial.Status.LOCKED:
        raise Refused(_("The database is already locked."))
    if trial.status != Trial.Status.CLOSED:
        raise Refused(_("Close recruitment before locking the database."))
    if blockers := lock_blockers(trial):
        raise Refused(
            _("Resolve first: %(blockers)s")
            % {"blockers": "; ".join(f"{n} {what}" for what, n in blockers)}
        )
    trial.status = Trial.Status.LOCKED
    attribute(trial, by=by, reason=f"database locked: {reason}").save(update_fields=["status"])
    DatabaseLock.objects.create(
        trial=trial, action=DatabaseLock.Action.LOCKED, by=by, reason=reason
    )
    return trial


@transaction.atomic
def unlock_database(trial, *, by, reason):
    """Unlock a locked database: an exceptional event, kept in the audit trail and shown with
    every export made before it."""
    _require_trial_data_manager(by, trial)
    reason = _reason(reason)
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    if trial.status != Trial.Status.LOCKED:
        raise Refused(_("The database is not locked."))
    trial.status = Trial.Status.CLOSED
    attribute(trial, by=by, reason=f"database UNLOCKED: {reason}").save(update_fields=["status"])
    DatabaseLock.objects.create(
        trial=trial, action=DatabaseLock.Action.UNLOCKED, by=by, reason=reason
    )
    return trial


def _casebook(participant, *, by, reason):
    _require_data_manager(by, participant.trial, participant.site)
    check_unlocked(Scope(participant.trial_id))
    return Participant.objects.select_for_update().get(pk=participant.pk), _reason(reason)


@transaction.atomic
def lock_casebook(participant, *, by, reason):
    """Lock one participant's casebook (every form, visit and record of theirs)."""
    participant, reason = _casebook(participant, by=by, reason=reason)
    if participant.casebook_locked_at is not None:
        raise Refused(_("This casebook is already locked."))
    if blockers := lock_blockers(participant.trial, participant):
        raise Refused(
            _("Resolve first: %(blockers)s")
            % {"blockers": "; ".join(f"{n} {what}" for what, n in blockers)}
        )
    participant.casebook_locked_at = timezone.now()
    attribute(participant, by=by, reason=f"casebook locked: {reason}").save(
        update_fields=["casebook_locked_at"]
    )
    return participant


@transaction.atomic
def unlock_casebook(participant, *, by, reason):
    participant, reason = _casebook(participant, by=by, reason=reason)
    if participant.casebook_locked_at is None:
        raise Refused(_("This casebook is not locked."))
    participant.casebook_locked_at = None
    attribute(participant, by=by, reason=f"casebook unlocked: {reason}").save(
        update_fields=["casebook_locked_at"]
    )
    return participant


@transaction.atomic
def unlock_form(entry, *, by, reason):
    """A locked form goes back to verified, with the reason."""
    participant = entry.participant
    _require_data_manager(by, participant.trial, participant.site)
    check_unlocked(Scope(participant.trial_id, (participant.pk,)))
    reason = _reason(reason)
    entry = FormEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != FormEntry.Status.LOCKED:
        raise Refused(_("This form is not locked."))
    entry.status = FormEntry.Status.VERIFIED
    attribute(entry, by=by, reason=f"unlocked: {reason}").save(
        update_fields=["status", "updated_at"]
    )
    return entry


# --- Double data entry ------------------------------------------------------------------------


def discrepancies(participant, instrument_code, timepoint_code):
    """[(item code, first value, second value)] where the two complete entries differ."""
    entries = {
        e.kind: e
        for e in FormEntry.objects.filter(
            participant=participant,
            instrument=instrument_code,
            timepoint=timepoint_code,
            kind__in=[FormEntry.Kind.FIRST, FormEntry.Kind.SECOND],
        )
    }
    first, second = entries.get(FormEntry.Kind.FIRST), entries.get(FormEntry.Kind.SECOND)
    if not first or not second or FormEntry.Status.DRAFT in (first.status, second.status):
        return None
    instrument = registry.get(instrument_code)
    return [
        (item.code, first.values.get(item.code), second.values.get(item.code))
        for item in instrument.items
        if first.values.get(item.code) != second.values.get(item.code)
    ]


@writes_clinical_data("assessments.reconcile", lambda a: Scope.of(a["visit"]))
@transaction.atomic
def reconcile(visit, instrument_code, chosen, *, by, reasons):
    """Make the final entry from the two entries: where they agree their value, where they
    differ the value the data manager chose (raw text, validated), each with a reason."""
    participant = visit.participant
    if not access.has(by, Perm.VERIFY_FORMS, participant.trial, participant.site):
        raise Refused(_("Only a data manager reconciles double entries."))
    diffs = discrepancies(participant, instrument_code, visit.timepoint.code)
    if diffs is None:
        raise Refused(_("Both entries must be complete before they are reconciled."))
    first = FormEntry.objects.get(
        participant=participant,
        instrument=instrument_code,
        timepoint=visit.timepoint.code,
        kind=FormEntry.Kind.FIRST,
    )
    raw = {k: _as_text(v) for k, v in first.values.items()}
    errors = {}
    for code, _first, _second in diffs:
        if not str(chosen.get(code, "")).strip() and code in first.values:
            errors[code] = "Choose or enter the value."
        if not str(reasons.get(code, "")).strip():
            errors[code] = "Give the reason for this value."
        raw[code] = chosen.get(code, "")
    if errors:
        raise FormInvalid(errors)
    why = "; ".join(f"{code}: {reasons[code]}" for code, _, _ in diffs) or "entries agree"
    instrument = registry.get(instrument_code)
    values, errors = clean(instrument, raw, complete=True)
    if errors:
        raise FormInvalid(errors)
    if FormEntry.objects.filter(
        participant=participant,
        instrument=instrument_code,
        timepoint=visit.timepoint.code,
        kind=FormEntry.Kind.FINAL,
    ).exists():
        raise Refused(_("This form is already reconciled."))
    final = FormEntry(
        participant=participant,
        visit=visit,
        instrument=instrument_code,
        instrument_version=instrument.version,
        timepoint=visit.timepoint.code,
        kind=FormEntry.Kind.FINAL,
        values=values,
        scores=compute_scores(instrument, values),
        status=FormEntry.Status.COMPLETE,
        entered_by=by,
    )
    attribute(final, by=by, reason=f"reconciled: {why}").save()
    _update_visit(visit, by=by)
    return final


def _as_text(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


@writes_clinical_data("assessments.mark_missed", lambda a: Scope.of(a["visit"]))
@transaction.atomic
def mark_missed(visit, *, by, reason, because=Visit.MissedBecause.OTHER):
    """The visit will not happen (the data manager decides); kept, flagged, with the category
    the CONSORT flow counts as the reason for loss to follow-up (`because`, a
    Visit.MissedBecause) and the typed reason in its history. A death is recorded with
    record_death, which marks the visits it ends."""
    participant = visit.participant
    if not access.has(by, Perm.VERIFY_FORMS, participant.trial, participant.site):
        raise Refused(_("Only a data manager marks a visit missed."))
    if because not in Visit.MissedBecause.values:
        raise Refused(_("Choose why the visit was missed."))
    if because == Visit.MissedBecause.DIED:
        raise Refused(
            _("Record the death on the participant's page: it ends every visit after it.")
        )
    if not reason.strip():
        raise Refused(_("Give the reason the visit was missed."))
    reason = _storable(reason)
    if visit.completed_on:
        raise Refused(_("This visit is already done."))
    visit.missed, visit.missed_because = True, because
    attribute(visit, by=by, reason=reason).save(update_fields=["missed", "missed_because"])
    return visit


def _end_follow_up(participant, status, *, by, reason):
    """The participant's schedule ends: no more visits, reminders or forms to enter."""
    if participant.status in Participant.FOLLOW_UP_ENDED:
        raise Refused(
            _("Follow-up has already ended (%(status)s).")
            % {"status": participant.get_status_display()}
        )
    if participant.randomized_on is None:
        raise Refused(_("Only a randomized participant is excluded or followed to the end."))
    participant.status = status
    attribute(participant, by=by, reason=reason).save(update_fields=["status"])


@writes_clinical_data("assessments.exclude", lambda a: Scope.of(a["participant"]))
@transaction.atomic
def exclude_after_randomization(participant, category, *, by, decided_by, excluded_on, reason):
    """Exclude a randomized participant (CONSORT: excluded after randomization), with the
    category, who decided, and why. The allocation and the data stay; the participant leaves
    the intention-to-treat population and the schedule ends."""
    if not access.may_withdraw(by, participant):
        raise Refused(_("You may not record exclusions for this participant."))
    if category not in ExclusionAfterRandomization.Category.values:
        raise Refused(_("Choose the category of the exclusion."))
    if not decided_by.strip() or not reason.strip():
        raise Refused(_("Say who decided and why."))
    participant = Participant.objects.select_for_update(no_key=True).get(pk=participant.pk)
    if allocations.flagged_in_error(participant):
        raise Refused(_("This allocation is flagged as made in error: it is excluded already."))
    if participant.randomized_on and excluded_on < participant.randomized_on:
        raise Refused(_("The exclusion cannot come before the randomization."))
    if excluded_on > timezone.localdate():
        raise Refused(_("The date of the exclusion cannot be in the future."))
    _end_follow_up(participant, Participant.Status.EXCLUDED, by=by, reason="excluded")
    return ExclusionAfterRandomization.objects.create(
        participant=participant,
        category=category,
        excluded_on=excluded_on,
        decided_by=_storable(decided_by.strip()),
        reason=_storable(reason.strip()),
        recorded_by=by,
    )


@writes_clinical_data("assessments.record_death", lambda a: Scope.of(a["participant"]))
@transaction.atomic
def record_death(participant, *, by, died_on, cause=Death.Cause.UNKNOWN):
    """A participant died: the schedule ends, and every visit not done whose window had not
    closed by the date of death is marked missed because the participant died."""
    if not access.may_withdraw(by, participant):
        raise Refused(_("You may not record a death for this participant."))
    if cause not in Death.Cause.values:
        raise Refused(_("Choose the cause of death (or unknown)."))
    if died_on > timezone.localdate():
        raise Refused(_("The date of death cannot be in the future."))
    participant = Participant.objects.select_for_update(no_key=True).get(pk=participant.pk)
    if participant.randomized_on and died_on < participant.randomized_on:
        raise Refused(_("The date of death cannot come before the randomization."))
    # Visits due but not made yet are made first (while the schedule still runs), so that the
    # flow shows the death at every timepoint after it.
    schedule_participant_visits(participant)
    _end_follow_up(participant, Participant.Status.DIED, by=by, reason="died")
    ended = participant.visits.filter(
        completed_on__isnull=True, missed=False, window_end__gte=died_on
    ).select_for_update(no_key=True)
    for visit in ended:
        visit.missed, visit.missed_because = True, Visit.MissedBecause.DIED
        attribute(visit, by=by, reason="the participant died").save(
            update_fields=["missed", "missed_because"]
        )
    return Death.objects.create(
        participant=participant, died_on=died_on, cause=cause, recorded_by=by
    )


@writes_clinical_data("assessments.assign_assessor", lambda a: Scope.of(a["visit"]))
@transaction.atomic
def assign_assessor(visit, assessor, *, by):
    """Give the visit to a blinded assessor the participant has not unblinded."""
    participant = visit.participant
    if not access.has(by, Perm.VERIFY_FORMS, participant.trial, participant.site):
        raise Refused(_("Only a data manager assigns assessors."))
    if not access.may_enter(assessor, participant, "assessor_interview"):
        raise Refused(
            _("%(assessor)s may not rate this participant's interviews.") % {"assessor": assessor}
        )
    visit.assessor, visit.needs_reassignment = assessor, False
    attribute(visit, by=by, reason=f"assigned to {assessor}").save(
        update_fields=["assessor", "needs_reassignment"]
    )
    return visit


# --- Blinding ---------------------------------------------------------------------------------


@writes_clinical_data("assessments.record_unblinding", lambda a: Scope.of(a["participant"]))
@transaction.atomic
def record_unblinding(participant, assessor, *, by, occurred_on, description):
    """The participant disclosed their allocation to `assessor`: that assessor may no longer
    rate this participant, and their open visits are flagged for another blinded assessor."""
    if not description.strip():
        raise Refused(_("Describe what happened."))
    if not access.has(by, Perm.VIEW_PARTICIPANTS, participant.trial, participant.site):
        raise Refused(_("You may not report for this participant."))
    incident = UnblindingIncident.objects.create(
        participant=participant,
        assessor=assessor,
        occurred_on=occurred_on,
        description=description.strip(),
        reported_by=by,
    )
    access.forget(assessor)  # this user object answers may_enter anew
    for visit in Visit.objects.filter(
        Q(assessor=assessor) | Q(assessor__isnull=True),
        participant=participant,
        completed_on__isnull=True,
    ):
        visit.needs_reassignment = True
        visit.assessor = None
        attribute(visit, by=by, reason="unblinding incident").save(
            update_fields=["needs_reassignment", "assessor"]
        )
    return incident


@writes_clinical_data("assessments.record_guess", lambda a: Scope.of(a["visit"]))
@transaction.atomic
def record_guess(visit, guess, *, by):
    """The assessor's guess of the arm (A, B, don't know), for the blinding index."""
    if guess not in Visit.Guess.values:
        raise Refused(_("Guess A, B or don't know."))
    if not visit.timepoint.ask_blinding_guess:
        raise Refused(_("No guess is asked at this visit."))
    if not access.may_enter(by, visit.participant, "assessor_interview"):
        raise Refused(_("Only the visit's blinded assessor records a guess."))
    visit.guess, visit.guess_by = guess, by
    attribute(visit, by=by).save(update_fields=["guess", "guess_by"])
    return visit


# --- Low-level save ---------------------------------------------------------------------------


# --- Withdrawal -------------------------------------------------------------------------------


@writes_clinical_data("assessments.withdraw", lambda a: Scope.of(a["participant"]))
@transaction.atomic
def withdraw(participant, level, *, by, reason, withdrawn_on):
    """Record a withdrawal at one of the three protocol levels (DOMAIN.md 10.6).

    Level 3 erases the participant's clinical data (form values, their history, identifying
    details); the allocation, the pseudonymous participant row and this withdrawal record stay,
    so the sequence and the flow diagram remain intact. It lives here, downstream of
    randomization, because the erasure reaches the case record forms."""
    if not access.may_withdraw(by, participant):
        raise Refused(_("You may not record withdrawals for this participant."))
    if not reason.strip():
        raise Refused(_("Give the reason for the withdrawal."))
    level = Withdrawal.Level(level)
    if not access.may_withdraw(by, participant, level):
        # Level 1 exists in the IMR arm only; refused alike for every participant, so the
        # refusal (or "already withdrawn at level 1") tells a blinded user nothing.
        raise Refused(_("Stopping the intervention is recorded by unblinded staff."))
    participant = Participant.objects.select_for_update(no_key=True).get(pk=participant.pk)
    highest = participant.withdrawals.order_by("-level").values_list("level", flat=True).first()
    if highest is not None and highest >= level:
        raise Refused(
            _("This participant is already withdrawn at level %(level)s.") % {"level": highest}
        )
    erased = {}
    if level == Withdrawal.Level.CONSENT:
        erased = _erase_clinical_data(participant, by=by, reason=reason)
    Withdrawal.objects.create(
        participant=participant,
        level=level,
        withdrawn_on=withdrawn_on,
        reason=reason.strip(),
        recorded_by=by,
        erased=erased,
    )
    # A participant already withdrawn, excluded or dead keeps that status: their follow-up
    # ended first (the Withdrawal row above records this one).
    if (
        level >= Withdrawal.Level.FOLLOW_UP
        and participant.status not in Participant.FOLLOW_UP_ENDED
    ):
        participant.status = Participant.Status.WITHDRAWN
        attribute(participant, by=by, reason=f"withdrawal level {level}: {reason}").save(
            update_fields=["status"]
        )
    return participant


def _erase_clinical_data(participant, *, by, reason):
    entries = FormEntry.objects.filter(participant=participant)
    entry_ids = list(entries.values_list("pk", flat=True))
    # The history of erased values must go too, or the erasure would erase nothing.
    history_rows, _by_model = FormEntry.history.filter(id__in=entry_ids).delete()
    for entry in entries:
        # Scores are computed from the values: they go with them.
        entry.values, entry.scores = {}, {}
        attribute(entry, by=by, reason=f"erased: consent withdrawn ({reason})").save(
            update_fields=["values", "scores"]
        )
    details = IdentifyingDetails.objects.filter(screening__participant=participant).first()
    if details:
        IdentifyingDetails.history.filter(id=details.pk).delete()
        details.full_name = details.national_id = details.national_id_key = details.phone = ""
        # And what the participant's own questionnaires brought (selfreport): where their
        # links went, and the year of birth a link asks for.
        details.email, details.birth_year, details.agreed_to_links = "", None, False
        attribute(details, by=by, reason="erased: consent withdrawn").save()
    return {
        "form_entries": len(entry_ids),
        "history_rows": history_rows,
        "identifying_details": bool(details),
    }
