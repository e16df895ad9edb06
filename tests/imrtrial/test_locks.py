"""A lock holds in the services: every registered writer of clinical data (imrtrial.locking)
refuses, with nothing written, while the database, the casebook or the form it would change is
locked; and writes again once it is unlocked with a reason.

The table below names a valid call of every registered writer in the security world; a writer
registered without a call here fails test_every_writer_is_asked, so none can be forgotten."""

import datetime

import pytest
from django.apps import apps
from django.utils import timezone

from assessments import queries
from assessments import services as crf
from assessments.models import DataQuery, FormEntry, Visit
from fidelity import services as imr
from imrtrial import locking
from imrtrial.errors import Refused
from imrtrial.models import Participant, Role, Trial
from monitoring.services import mark_source_verified
from quality.services import system_account
from randomization import services as randomization
from randomization.models import IdentifyingDetails, Screening
from safety import services as safety
from selfreport import services as selfreport
from tests.factories import (
    default_levels,
    import_register_rows,
    make_allocation,
    make_ready_participant,
    make_signature,
    year_before_baseline,
    yes_to_all,
)
from tests.security.conftest import build_world

# Writers that touch no participant's casebook: the database lock stops them, a casebook cannot.
TRIAL_LEVEL = {
    "fidelity.create_group",
    "fidelity.create_assessment",
    "fidelity.submit_rating",
    "fidelity.submit_consensus",
    "randomization.screen",
    "randomization.record_consent",
    "randomization.enrol",
    # Signing writes no clinical data: a locked casebook is signed (ICH E6 expects the
    # investigator to sign the final data); a locked database is not (tests/signoff).
    "signoff.sign",
}


class Calls:
    """One valid call of every writer, in a world made for them."""

    def __init__(self):
        self.world = w = build_world()
        self.today = timezone.localdate()
        u, self.users = w.users, w.users
        self.desk, self.dm = u[Role.COORDINATOR], u[Role.DATA_MANAGER]
        self.assessor, self.facilitator = u[Role.ASSESSOR], u[Role.FACILITATOR]
        self.rater = u[Role.FIDELITY_RATER]
        self.investigator = u[Role.INVESTIGATOR]
        self.investigator.first_name, self.investigator.last_name = "Inge", "Vestergaard"
        self.investigator.save(update_fields=["first_name", "last_name"])
        self.joiner = make_ready_participant(w.trial, self.desk, site=w.north)
        make_allocation(self.joiner, "imr", by=self.desk)
        self.joiner = Participant.objects.get(pk=self.joiner.pk)
        # Two randomized participants whose follow-up the exclusion and the death end.
        self.excluded, self.deceased = (
            make_ready_participant(w.trial, self.desk, site=w.north) for _ in range(2)
        )
        for participant in (self.excluded, self.deceased):
            make_allocation(participant, "tau", by=self.desk)
        Participant.objects.filter(pk__in=[self.excluded.pk, self.deceased.pk]).update(
            randomized_on=self.today
        )
        self.excluded, self.deceased = (
            Participant.objects.get(pk=p.pk) for p in (self.excluded, self.deceased)
        )
        self.open_group = imr.create_group(
            w.trial,
            w.north,
            by=self.facilitator,
            name="Open circle",
            facilitators=[self.facilitator, u["facilitator2"]],
            start_date=self.today,
            planned_sessions=10,
            capacity=8,
        )
        # Queries in every state a writer starts from, on the control participant's post visit.
        post = w.tau.visits.get(timepoint__code="post")
        waiting = [
            queries.open_query(post, by=self.dm, category="other", text=f"Question {n}")
            for n in range(3)
        ]
        self.answered, self.closed, self.to_cancel = waiting
        for query in (self.answered, self.closed):
            queries.answer_query(query, by=self.assessor, text="Answered")
        queries.close_query(self.closed, by=self.dm, text="Closed")
        # A data quality rule's query, opened by its system account (quality.services).
        self.system = system_account()
        self.rule_query = queries.open_rule_query(
            post, by=self.system, category="inconsistent", text="Data quality rule: check"
        )
        self.unrated = imr.create_assessment(
            w.group,
            by=self.rater,
            kind="midway",
            date=w.session.date,
            data_sources=["interviews"],
        )

    def participants(self):
        w = self.world
        return [
            w.imr,
            w.tau,
            w.extra["ready"],
            self.joiner,
            self.excluded,
            self.deceased,
            w.south_tau,
        ]

    def table(self):
        w, today = self.world, self.today
        tau_base = w.tau.visits.get(timepoint__code="baseline")
        tau_post = w.tau.visits.get(timepoint__code="post")
        gaf = FormEntry.objects.get(participant=w.tau, instrument="gaf_f")
        consenting = Screening.objects.filter(trial=w.trial, consent_date__isnull=True).first()
        consented = Screening.objects.filter(
            trial=w.trial, consent_date__isnull=False, participant__isnull=True
        ).first()
        scores = dict.fromkeys(range(1, 11), 4)
        tau_event = w.extra["safety_events"][1]
        return {
            "assessments.save_entry": lambda: crf.save_entry(
                tau_post, "gaf_f", {"gaf_f": "60"}, by=self.assessor, kind="single"
            ),
            "assessments.set_status": lambda: crf.set_status(
                gaf, FormEntry.Status.VERIFIED, by=self.dm
            ),
            "assessments.reconcile": lambda: crf.reconcile(
                tau_base,
                "csq8",
                {f"c{i}": "1" for i in range(1, 9)},
                by=self.dm,
                reasons={f"c{i}": "as on paper" for i in range(1, 9)},
            ),
            "assessments.mark_missed": lambda: crf.mark_missed(
                tau_post, by=self.dm, reason="moved away"
            ),
            "assessments.assign_assessor": lambda: crf.assign_assessor(
                tau_post, self.assessor, by=self.dm
            ),
            "assessments.record_unblinding": lambda: crf.record_unblinding(
                w.tau,
                self.users["assessor-north"],
                by=self.dm,
                occurred_on=today,
                description="said so",
            ),
            "assessments.record_guess": lambda: crf.record_guess(tau_post, "A", by=self.assessor),
            "assessments.withdraw": lambda: crf.withdraw(
                w.tau, 2, by=self.desk, reason="moved away", withdrawn_on=today
            ),
            "assessments.exclude": lambda: crf.exclude_after_randomization(
                self.excluded,
                "withdrew_consent",
                by=self.desk,
                decided_by="the research group",
                excluded_on=today,
                reason="withdrew consent the day after",
            ),
            "assessments.record_death": lambda: crf.record_death(
                self.deceased, by=self.desk, died_on=today
            ),
            "fidelity.create_group": lambda: imr.create_group(
                w.trial,
                w.north,
                by=self.facilitator,
                name="Second circle",
                facilitators=[self.facilitator, self.users["facilitator2"]],
                start_date=today,
                planned_sessions=10,
                capacity=8,
            ),
            "fidelity.add_member": lambda: imr.add_member(
                self.open_group, self.joiner, by=self.facilitator, joined_on=today
            ),
            "fidelity.leave_group": lambda: imr.leave_group(
                w.membership, by=self.facilitator, left_on=today
            ),
            "fidelity.end_group": lambda: imr.end_group(
                w.group, by=self.facilitator, on=today, reason="too few members"
            ),
            "fidelity.log_session": lambda: imr.log_session(
                w.group,
                by=self.facilitator,
                date=w.session.date + datetime.timedelta(days=7),
                modules=["recovery_strategies"],
                duration_minutes=60,
                facilitators_present=[self.facilitator],
                attendance={w.imr: "attended"},
            ),
            "fidelity.record_attendance": lambda: imr.record_attendance(
                w.session, w.imr, by=self.facilitator, status="absent", reason="register misread"
            ),
            "fidelity.record_follow_up_call": lambda: imr.record_follow_up_call(
                w.session, w.imr, by=self.facilitator, called_on=w.session.date, outcome="again"
            ),
            "fidelity.create_assessment": lambda: imr.create_assessment(
                self.open_group,
                by=self.rater,
                kind="midway",
                date=self.open_group.start_date,
                data_sources=["interviews"],
            ),
            "fidelity.submit_rating": lambda: imr.submit_rating(
                self.unrated, by=self.rater, scores=scores
            ),
            "fidelity.submit_consensus": lambda: imr.submit_consensus(
                w.assessment, by=self.rater, scores=dict.fromkeys(range(1, 14), 4)
            ),
            "randomization.screen": lambda: randomization.screen(
                w.trial, w.north, by=self.desk, answers=yes_to_all(w.trial), screened_on=today
            ),
            "randomization.record_consent": lambda: randomization.record_consent(
                consenting,
                by=self.desk,
                consent_date=today,
                form_version="v1",
                obtained_by="Dr Who",
            ),
            "randomization.enrol": lambda: randomization.enrol(
                consented, by=self.desk, factor_levels=default_levels(w.trial)
            ),
            "randomization.randomize": lambda: randomization.randomize(
                w.extra["ready"], by=self.desk
            ),
            "randomization.mark_in_error": lambda: randomization.mark_in_error(
                randomization.allocation_of(w.tau), by=self.desk, reason="wrong person"
            ),
            "randomization.record_baseline": lambda: randomization.record_baseline(
                w.extra["ready"], by=self.desk, completed_on=today
            ),
            "assessments.open_query": lambda: queries.open_query(
                tau_post, by=self.dm, category="missing", text="Where is the date?"
            ),
            "assessments.answer_query": lambda: queries.answer_query(
                w.extra["visit_queries"][1], by=self.assessor, text="On the source document."
            ),
            "assessments.close_query": lambda: queries.close_query(
                self.answered, by=self.dm, text="Resolved."
            ),
            "assessments.reopen_query": lambda: queries.reopen_query(
                self.closed, by=self.dm, text="Please look again."
            ),
            "assessments.cancel_query": lambda: queries.cancel_query(
                self.to_cancel, by=self.dm, text="Opened in error."
            ),
            "assessments.open_rule_query": lambda: queries.open_rule_query(
                tau_post, by=self.system, category="inconsistent", text="Rule: check the dates"
            ),
            "assessments.close_rule_query": lambda: queries.close_rule_query(
                self.rule_query, by=self.system, text="Closed by itself: fixed."
            ),
            "signoff.sign": lambda: make_signature(w.tau, by=self.investigator),
            "monitoring.mark_source_verified": lambda: mark_source_verified(
                gaf, by=self.users[Role.MONITOR], checked_on=today
            ),
            "safety.record_event": lambda: safety.record_event(
                w.tau,
                by=self.users[Role.CASE_MANAGER],
                kind="adverse",
                category="suicide_attempt",
                onset_on=today,
                description="Overdose, seen in the emergency room",
                serious=True,
                seriousness=["hospitalisation"],
                outcome="resolved",
            ),
            "safety.correct_event": lambda: safety.correct_event(
                tau_event, by=self.users[Role.CASE_MANAGER], reason="misread", outcome="ongoing"
            ),
            "safety.judge_relatedness": lambda: safety.judge_relatedness(
                tau_event,
                by=self.users[Role.CASE_MANAGER],
                relatedness="unlikely",
                judged_on=today,
                reason="looked again",
            ),
            # South's participant has no register data yet (the world's are North's).
            "registers.import_rows": lambda: import_register_rows(
                w.extra["register_dataset"],
                [(w.south_tau.participant_id, *year_before_baseline(w.south_tau), 1, 3)],
                by=self.dm,
            ),
            "selfreport.start_hand_over": lambda: selfreport.start_hand_over(
                self.self_report_visit(), by=self.assessor
            ),
            "selfreport.send_link": lambda: selfreport.send_link(
                self.self_report_visit(), "email", by=self.assessor
            ),
        }

    def self_report_visit(self):
        """A visit with self-report forms open, of a participant whom links may reach, its
        window still open (changed by a plain update, which writes no row)."""
        visit = next(
            v
            for p in self.participants()
            for v in p.visits.select_related("timepoint", "participant__trial")
            if selfreport.open_forms(v) and not v.missed
        )
        IdentifyingDetails.objects.filter(screening__participant=visit.participant).update(
            email="p@example.org", birth_year=1980, agreed_to_links=True
        )
        end = self.today + datetime.timedelta(days=30)
        Visit.objects.filter(pk=visit.pk).update(window_end=end)
        visit.window_end = end
        return visit


def snapshot():
    """Row counts of every clinical table (and its history): what a refused write must leave."""
    labels = {
        "imrtrial",
        "randomization",
        "assessments",
        "fidelity",
        "safety",
        "signoff",
        "monitoring",
        "registers",
        "selfreport",
    }
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m._meta.app_label in labels and m._meta.model_name != "accesslog"
    }


@pytest.fixture
def calls(db):
    return Calls()


def refuses_with_nothing_written(name, call):
    before = snapshot()
    with pytest.raises(Refused) as refused:
        call()
    assert snapshot() == before, name
    return str(refused.value)


def test_every_writer_is_asked(calls):
    assert set(calls.table()) == set(locking.writers())


def test_every_writer_refuses_while_the_database_is_locked(calls):
    Trial.objects.filter(pk=calls.world.trial.pk).update(status=Trial.Status.LOCKED)
    for name, call in calls.table().items():
        refuses_with_nothing_written(name, call)


def test_every_writer_of_a_casebook_refuses_while_it_is_locked(calls):
    Participant.objects.filter(pk__in=[p.pk for p in calls.participants()]).update(
        casebook_locked_at=timezone.now()
    )
    for name, call in calls.table().items():
        if name in TRIAL_LEVEL:
            continue
        message = refuses_with_nothing_written(name, call)
        assert "casebook" in message, (name, message)


def test_writers_of_a_locked_form_refuse(calls):
    entry = FormEntry.objects.get(participant=calls.world.tau, instrument="gaf_f")
    FormEntry.objects.filter(pk=entry.pk).update(status=FormEntry.Status.LOCKED)
    visit = entry.visit
    for name, call in {
        "save_entry": lambda: crf.save_entry(
            visit, "gaf_f", {"gaf_f": "61"}, by=calls.assessor, kind="single", reason="typo"
        ),
        "set_status": lambda: crf.set_status(entry, FormEntry.Status.VERIFIED, by=calls.dm),
        "mark_source_verified": lambda: mark_source_verified(
            entry, by=calls.users[Role.MONITOR], checked_on=timezone.localdate()
        ),
    }.items():
        assert "form is locked" in refuses_with_nothing_written(name, call)


def test_unlocking_with_a_reason_lets_every_writer_write_again(calls):
    trial, dm = calls.world.trial, calls.dm
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.LOCKED)
    trial.refresh_from_db()
    crf.unlock_database(trial, by=dm, reason="a late lab value to enter")
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.OPEN)  # recruiting, for screen
    for name, call in calls.table().items():
        try:
            call()
        except Refused as exc:  # pragma: no cover - the message says which
            pytest.fail(f"{name} refused after unlocking: {exc}")
    reasons = list(
        Trial.history.filter(id=trial.pk).values_list("history_change_reason", flat=True)
    )
    assert "database UNLOCKED: a late lab value to enter" in reasons


def test_locking_and_unlocking_the_database_are_actions_with_reasons_on_record(calls, client):
    from exports.models import ExportRun
    from exports.services import request_export
    from imrtrial.models import DatabaseLock

    trial, dm = calls.world.trial, calls.dm
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.CLOSED)
    trial.refresh_from_db()
    with pytest.raises(Refused, match="Resolve first"):  # drafts and unreconciled paper forms
        crf.lock_database(trial, by=dm, reason="final")
    FormEntry.objects.filter(participant__trial=trial).update(status=FormEntry.Status.VERIFIED)
    DataQuery.objects.open().update(status=DataQuery.Status.CLOSED)
    for p in (calls.world.imr, calls.world.tau):  # reconcile the paper forms entered twice
        crf.reconcile(
            p.visits.get(timepoint__code="baseline"),
            "csq8",
            {f"c{i}": "1" for i in range(1, 9)},
            by=dm,
            reasons={f"c{i}": "as on paper" for i in range(1, 9)},
        )
    with pytest.raises(Refused, match="reason"):
        crf.lock_database(trial, by=dm, reason=" ")
    trial = crf.lock_database(trial, by=dm, reason="all data clean")
    run = request_export(trial, by=dm, dataset="wide", format="csv")
    assert run.database_status == Trial.Status.LOCKED and not run.unlocks_since()
    with pytest.raises(Refused):
        crf.lock_database(trial, by=dm, reason="again")
    crf.unlock_database(trial, by=dm, reason="a late lab value")
    (unlock,) = ExportRun.objects.get(pk=run.pk).unlocks_since()
    assert unlock.reason == "a late lab value" and unlock.by == dm
    client.force_login(dm)
    listed = client.get(f"/trials/{trial.key}/exports/").content.decode()
    assert "unlocked since" in listed
    assert list(DatabaseLock.objects.values_list("action", flat=True)) == ["locked", "unlocked"]
    with pytest.raises(Refused, match="data manager"):
        crf.lock_database(trial, by=calls.assessor, reason="x")


def test_a_verified_form_that_changes_is_complete_again_with_its_reason(calls):
    entry = FormEntry.objects.get(participant=calls.world.tau, instrument="gaf_f")
    crf.set_status(entry, FormEntry.Status.VERIFIED, by=calls.dm)
    entry = crf.save_entry(
        entry.visit, "gaf_f", {"gaf_f": "58"}, by=calls.assessor, kind="single", reason="typo"
    )
    assert entry.status == FormEntry.Status.COMPLETE
    assert entry.history.first().history_change_reason == "typo (was verified: back to complete)"


def test_a_data_manager_of_one_site_neither_locks_the_database_nor_opens_its_page(calls, client):
    """The database is the whole trial's; its lock page also counts every site's forms."""
    trial = calls.world.trial
    north_dm = calls.users["data_manager-north"]
    Trial.objects.filter(pk=trial.pk).update(status=Trial.Status.CLOSED)
    trial.refresh_from_db()
    with pytest.raises(Refused, match="every site"):
        crf.lock_database(trial, by=north_dm, reason="final")
    client.force_login(north_dm)
    assert client.get(f"/trials/{trial.key}/lock/").status_code == 404
    client.force_login(calls.dm)
    assert client.get(f"/trials/{trial.key}/lock/").status_code == 200
