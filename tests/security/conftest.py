"""A trial with something of every kind, in both arms, made through the real services: the
ground the crawler, the fuzzer, the audit report and the admin tests walk on.

Every allocation-revealing fact carries a marker (a word found nowhere else), so a page that
shows one to a blinded role is caught by a plain text search."""

import datetime
import itertools
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from api import services as api_tokens
from assessments import queries
from assessments import services as crf
from assessments.models import FormEntry
from fidelity import services as imr
from imrtrial.blinding_words import revealing_words
from imrtrial.models import AccessLog, Participant, Perm, Role, Timepoint
from randomization import services as randomization
from registers.config import add_dataset as add_register_dataset
from safety import services as safety
from tests.factories import (
    import_register_rows,
    make_allocation,
    make_person,
    make_ready_participant,
    make_trial,
    year_before_baseline,
    yes_to_all,
)

BLINDED_ROLES = [
    Role.TRIAL_ADMIN,
    Role.ASSESSOR,
    Role.DATA_MANAGER,
    Role.STATISTICIAN,
    Role.MONITOR,
    Role.INVESTIGATOR,
]
GROUP_NAME = "Marigold circle"
SESSION_NOTE = "Zanzibar session note"
CALL_OUTCOME = "Quetzal call outcome"
FIDELITY_REPORT = "Kumquat fidelity report"
STOP_REASON = "Xylophone stop reason"  # the reason of a level-1 withdrawal (IMR arm only)
# Free text written by unblinded staff about the IMR participant: words a blinded reader may know
# exist, never read (imrtrial.access.may_read_text).
WITHDRAWAL_REASON = "Left the IMR group, Yarrow, and wants no further follow-up visits"
INCIDENT_TEXT = "Juniper: said at the interview that the IMR sessions helped"
ADVERSE_EVENT_TEXT = "Wisteria: told the IMR group of a hospital stay"
CHANGE_REASON = "Lilac: corrected after the IMR session"
VISIT_QUERY_TEXT = "Please confirm the date of this visit."
# The case manager's safety event log (safety): the IMR participant's event names the programme,
# and so does the reason its relatedness was judged again.
SAFETY_EVENT_TEXT = "Hyacinth: more hope since joining the IMR group"
SAFETY_REASON = "Hollyhock: the IMR facilitator told more"
UNBLINDED_TEXTS = (
    WITHDRAWAL_REASON,
    INCIDENT_TEXT,
    ADVERSE_EVENT_TEXT,
    CHANGE_REASON,
    SAFETY_EVENT_TEXT,
    SAFETY_REASON,
)


@dataclass
class World:
    trial: object
    north: object
    south: object
    users: dict  # role (or name) -> user
    imr: object  # participant in the IMR arm at North, a member of the group
    tau: object  # participant in the control arm at North
    south_tau: object  # a participant at South, for site scoping
    group: object = None
    session: object = None
    assessment: object = None
    membership: object = None
    staff_entry: object = None  # an IMRS (staff-rated) entry by the IMR facilitator
    extra: dict = field(default_factory=dict)

    @property
    def participants(self):
        return [self.imr, self.tau, self.south_tau]

    def revealing_texts(self):
        """Text no blinded role may read anywhere: arm labels, the group, its sessions, calls,
        fidelity, the level-1 withdrawal, the allocations' numbers and codes."""
        from randomization.services import allocation_of

        texts = {GROUP_NAME, SESSION_NOTE, CALL_OUTCOME, FIDELITY_REPORT, STOP_REASON}
        texts |= set(UNBLINDED_TEXTS)
        texts |= {arm.label for arm in self.trial.arms.all()}
        # The shared arm-revealing words that are names: the arms' labels and the groups'.
        texts |= {w.literal for w in revealing_words(self.trial) if w.kind in ("arm", "group")}
        for p in self.participants:
            allocation = allocation_of(p)
            texts |= {allocation.randomization_number, allocation.confirmation_code}
        return texts


def _timepoints(trial):
    Timepoint.objects.create(
        trial=trial,
        code="baseline",
        label="Baseline",
        order=0,
        anchor=Timepoint.Anchor.ENROLMENT,
        window_before_days=0,
        window_after_days=400,
        instruments=["gaf_f", "imrs_s", "csq8", "adverse_events"],
    )
    Timepoint.objects.create(
        trial=trial,
        code="post",
        label="Post-treatment",
        order=1,
        offset_days=200,
        window_before_days=120,
        window_after_days=120,
        instruments=["gaf_f", "imrs_s"],
        ask_blinding_guess=True,
    )


def build_world():
    today = timezone.localdate()
    trial = make_trial()
    # The arms named in all three languages, as a trial file may: each is a fact no blinded
    # page may show, in any language (imrtrial.blinding_words).
    trial.arms.filter(code="imr").update(
        translations={"da": "IMR + standardbehandling", "nl": "IMR + gebruikelijke zorg"}
    )
    trial.arms.filter(code="tau").update(
        translations={"da": "Standardbehandling", "nl": "Gebruikelijke zorg"}
    )
    _timepoints(trial)
    north, south = trial.sites.get(code="north"), trial.sites.get(code="south")
    users = {}
    for role in Role:
        # Facilitators work at one site: North. The others hold their role at every site.
        users[role] = make_person(trial, role, north if role == Role.FACILITATOR else None)
    # A group has two or three facilitators; an assessment, two raters.
    users["facilitator2"] = make_person(trial, Role.FACILITATOR, north, "facilitator-north2")
    users["rater2"] = make_person(trial, Role.FIDELITY_RATER, None, "rater-two")
    for role in (
        Role.TRIAL_ADMIN,
        Role.DATA_MANAGER,
        Role.KEY_HOLDER,
        Role.ASSESSOR,
        Role.MONITOR,
        Role.INVESTIGATOR,
    ):
        users[f"{role.value}-north"] = make_person(trial, role, north)
    desk = users[Role.COORDINATOR]

    randomized_on = today - datetime.timedelta(days=250)

    def participant(site, arm, name):
        p = make_ready_participant(trial, desk, site=site, full_name=name, national_id=name)
        make_allocation(p, arm, by=desk)
        Participant.objects.filter(pk=p.pk).update(randomized_on=randomized_on)
        return Participant.objects.get(pk=p.pk)

    imr_p = participant(north, "imr", "Ada North")
    tau_p = participant(north, "tau", "Bo North")
    south_tau = participant(south, "tau", "Cy South")
    crf.schedule_visits(trial)
    world = World(trial, north, south, users, imr_p, tau_p, south_tau)

    # Case record forms: the same for both arms, but the staff rating of the IMR member, which
    # their facilitator entered.
    assessor = users[Role.ASSESSOR]
    for p in world.participants:
        visit = p.visits.get(timepoint__code="baseline")
        crf.save_entry(visit, "gaf_f", {"gaf_f": "55"}, by=assessor, kind="single", complete=True)
        crf.save_entry(visit, "gaf_f", {"gaf_f": "57"}, by=assessor, kind="single", reason="typo")
    for p in (imr_p, tau_p):  # the data manager assigns each post visit to the assessor
        crf.assign_assessor(
            p.visits.get(timepoint__code="post"), assessor, by=users[Role.DATA_MANAGER]
        )
        # The assessor guesses B for both, right for one arm and wrong for the other: the
        # blinding report's index by arm tells them apart, its pooled rates do not.
        crf.record_guess(p.visits.get(timepoint__code="post"), "B", by=assessor)
    world.staff_entry = crf.save_entry(
        imr_p.visits.get(timepoint__code="baseline"),
        "imrs_s",
        {},
        by=users[Role.FACILITATOR],
        kind="single",
    )

    # IMR delivery at North: a group with the IMR participant, a session they missed, a call.
    facilitator = users[Role.FACILITATOR]
    start = randomized_on + datetime.timedelta(days=7)
    world.group = imr.create_group(
        trial,
        north,
        by=facilitator,
        name=GROUP_NAME,
        facilitators=[facilitator, users["facilitator2"]],
        start_date=start,
        planned_sessions=20,
        capacity=8,
    )
    world.membership = imr.add_member(world.group, imr_p, by=facilitator, joined_on=start)
    world.session = imr.log_session(
        world.group,
        by=facilitator,
        date=start,
        modules=["recovery_strategies"],
        duration_minutes=60,
        facilitators_present=[facilitator],
        attendance={imr_p: "absent"},
        notes=SESSION_NOTE,
    )
    imr.record_follow_up_call(
        world.session, imr_p, by=facilitator, called_on=start, outcome=CALL_OUTCOME
    )
    imr.record_attendance(
        world.session, imr_p, by=facilitator, status="excused", reason="was in hospital"
    )
    raters = [users[Role.FIDELITY_RATER], users["rater2"]]
    world.assessment = imr.create_assessment(
        world.group,
        by=raters[0],
        kind="end",
        date=start,
        data_sources=["interviews"],
        report=FIDELITY_REPORT,
    )
    for rater in raters:
        imr.submit_rating(world.assessment, by=rater, scores=dict.fromkeys(range(1, 14), 4))
    crf.withdraw(imr_p, 1, by=desk, reason=STOP_REASON, withdrawn_on=today)

    # Free text by unblinded staff: a staff rating's change reason and an unblinding incident
    # by the IMR participant's facilitator; an adverse event described by the facilitator
    # (their case manager) in both arms; a follow-up withdrawal the coordinator recorded, of one
    # participant of each arm (world.extra), so that no list or filter differs by arm.
    baseline = imr_p.visits.get(timepoint__code="baseline")
    crf.save_entry(baseline, "imrs_s", {}, by=facilitator, kind="single", reason=CHANGE_REASON)
    for p in (imr_p, tau_p):
        visit = p.visits.get(timepoint__code="baseline")
        entry = crf.save_entry(
            visit,
            "adverse_events",
            {"suicide_attempt": "no", "life_threatening": "no", "death": "no"},
            by=facilitator,
            kind="single",
        )
        crf.save_entry(
            visit,
            "adverse_events",
            {"description": ADVERSE_EVENT_TEXT},
            by=facilitator,
            kind="single",
            reason=CHANGE_REASON,
        )
        world.extra.setdefault("adverse_event", entry)
    _safety_events(world, today)
    crf.record_unblinding(
        imr_p,
        users["assessor-north"],
        by=facilitator,
        occurred_on=today,
        description=INCIDENT_TEXT,
    )
    for arm in ("imr", "tau"):
        withdrawn = participant(north, arm, f"Withdrawn {arm}")
        crf.withdraw(withdrawn, 2, by=desk, reason=WITHDRAWAL_REASON, withdrawn_on=today)
        world.extra[f"withdrawn_{arm}"] = withdrawn

    # A paper questionnaire entered twice, differently: something to reconcile, in both arms.
    for p, (user, answer) in itertools.product(
        (imr_p, tau_p), ((assessor, "1"), (users["assessor-north"], "2"))
    ):
        crf.save_entry(
            p.visits.get(timepoint__code="baseline"),
            "csq8",
            {f"c{i}": answer for i in range(1, 9)},
            by=user,
            kind="first" if answer == "1" else "second",
            complete=True,
        )
    # Data queries, the same in both arms: a question about the post visit, waiting for the
    # assessor it was assigned to; one about the baseline GAF-F item, answered and closed.
    dm = users[Role.DATA_MANAGER]
    for p in (imr_p, tau_p):
        post = p.visits.get(timepoint__code="post")
        world.extra.setdefault("visit_queries", []).append(
            queries.open_query(post, by=dm, category="other", text=VISIT_QUERY_TEXT)
        )
        baseline = p.visits.get(timepoint__code="baseline")
        gaf = FormEntry.objects.get(participant=p, instrument="gaf_f")
        query = queries.open_query(
            baseline, gaf, "gaf_f", by=dm, category="range", text="Is 57 right?"
        )
        queries.answer_query(query, by=assessor, text="Yes, as on the source document.")
        queries.close_query(query, by=dm, text="Thank you.")
        world.extra.setdefault("item_queries", []).append(query)
    # Source data verification: a monitor checked the South participant's GAF-F (the North
    # ones stay unmarked, for the writers' table of tests/imrtrial/test_locks.py).
    from monitoring.services import mark_source_verified

    mark_source_verified(
        FormEntry.objects.get(participant=south_tau, instrument="gaf_f"),
        by=users[Role.MONITOR],
        checked_on=today,
    )
    # The phone desk mid-way: a screening awaiting consent, one consented and not enrolled,
    # an enrolled participant awaiting randomization.
    for consent in ({}, {"consent_date": today, "consent_form_version": "v1"}):
        randomization.screen(
            trial,
            north,
            by=desk,
            answers=yes_to_all(trial),
            screened_on=today,
            consent_obtained_by="Dr Who" if consent else "",
            **consent,
        )
    world.extra["ready"] = make_ready_participant(trial, desk, site=north)
    # Register data (registers): the Dutch hospitalisation dataset, the same values for a
    # participant of each arm in the year before baseline; none yet for South's.
    dataset = add_register_dataset(trial, "nl_hospitalisation")
    import_register_rows(
        dataset,
        [(p.participant_id, *year_before_baseline(p), 2, 10) for p in (imr_p, tau_p)],
        by=users[Role.DATA_MANAGER],
    )
    world.extra["register_dataset"] = dataset
    # A data manager's API token: its revoke form is on the pages (account, trial administrator).
    world.extra["api_token"] = api_tokens.create_token(
        users[Role.DATA_MANAGER], trial, name="R script", permissions=[Perm.EXPORT_BLINDED], days=30
    )

    # The access log: an export, allocation views, an identifying-details view.
    for action, target, user in [
        (AccessLog.Action.EXPORT, "blinded dataset", users[Role.DATA_MANAGER]),
        (AccessLog.Action.VIEW_ALLOCATION, imr_p.participant_id, desk),
        (AccessLog.Action.VIEW_ALLOCATION, f"IMR group {GROUP_NAME}", facilitator),
        (AccessLog.Action.VIEW_IDENTIFYING, "S-0001", desk),
    ]:
        AccessLog.objects.create(user=user, trial=trial, action=action, target=target)
    return world


def _safety_events(world, today):
    """An event of each arm's North participant, recorded, judged, corrected and judged again
    by the case manager (world.extra["safety_events"]: IMR side, control side). Only the IMR
    participant's words name the programme."""
    case_manager = world.users[Role.CASE_MANAGER]
    events = []
    for p, text in ((world.imr, SAFETY_EVENT_TEXT), (world.tau, "More hope at home")):
        event = safety.record_event(
            p,
            by=case_manager,
            kind="beneficial",
            category="more_hope",
            onset_on=today - datetime.timedelta(days=10),
            description=text,
            outcome="ongoing",
        )
        safety.judge_relatedness(event, by=case_manager, relatedness="possible", judged_on=today)
        safety.correct_event(event, by=case_manager, reason="typo", outcome="resolved")
        reason = SAFETY_REASON if p == world.imr else "Looked again"
        safety.judge_relatedness(
            event, by=case_manager, relatedness="probable", judged_on=today, reason=reason
        )
        events.append(event)
    world.extra["safety_events"] = tuple(events)


@pytest.fixture
def world(db):
    return build_world()
