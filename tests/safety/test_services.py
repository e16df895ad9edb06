"""Recording, correcting and judging safety events through the services: who may, what an event
must be, and that a refusal writes nothing."""

import datetime

import pytest
from django.utils import timezone

from imrtrial.errors import Refused
from imrtrial.models import Role
from safety import services
from safety.models import SafetyEvent

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def days_ago(n):
    return TODAY() - datetime.timedelta(days=n)


def an_event(**overrides):
    fields = {
        "kind": "adverse",
        "category": "suicide_attempt",
        "onset_on": days_ago(5),
        "description": "Overdose; two nights on the ward",
        "serious": True,
        "seriousness": ["hospitalisation"],
        "outcome": "resolved",
    }
    return fields | overrides


def test_a_case_manager_records_an_event_that_a_named_clinician_judges_later(
    imr_participant, case_manager, chief
):
    event = services.record_event(imr_participant, by=case_manager, **an_event())
    event.refresh_from_db()
    assert (event.kind, event.category, event.serious, event.seriousness) == (
        "adverse",
        "suicide_attempt",
        True,
        ["hospitalisation"],
    )
    assert event.entered_by == case_manager and event.entered_at is not None
    assert event.relatedness == "not_judged" and event.judged_by is None
    services.judge_relatedness(event, by=chief, relatedness="unlikely", judged_on=TODAY())
    event.refresh_from_db()
    assert (event.relatedness, event.judged_by, event.judged_on) == ("unlikely", chief, TODAY())
    assert event.history.first().history_user == chief


def test_judging_again_needs_a_reason_and_keeps_both_judgements(
    imr_participant, case_manager, chief
):
    event = services.record_event(imr_participant, by=case_manager, **an_event())
    services.judge_relatedness(event, by=case_manager, relatedness="possible", judged_on=TODAY())
    with pytest.raises(Refused, match="reason"):
        services.judge_relatedness(event, by=chief, relatedness="not_related", judged_on=TODAY())
    services.judge_relatedness(
        event, by=chief, relatedness="not_related", judged_on=TODAY(), reason="records read"
    )
    versions = list(event.history.order_by("history_id"))
    assert [(v.relatedness, v.judged_by_id) for v in versions] == [
        ("not_judged", None),
        ("possible", case_manager.pk),
        ("not_related", chief.pk),
    ]
    assert versions[-1].history_change_reason == "records read"


@pytest.mark.parametrize(
    ("relatedness", "judged", "message"),
    [
        ("not_judged", 0, "Choose"),
        ("maybe", 0, "Choose"),
        ("possible", -1, "future"),
        ("possible", 6, "before it began"),
    ],
)
def test_a_judgement_out_of_bounds_is_refused_with_nothing_written(
    imr_participant, case_manager, relatedness, judged, message
):
    event = services.record_event(imr_participant, by=case_manager, **an_event())
    with pytest.raises(Refused, match=message):
        services.judge_relatedness(
            event, by=case_manager, relatedness=relatedness, judged_on=days_ago(judged)
        )
    assert event.history.count() == 1
    event.refresh_from_db()
    assert event.relatedness == "not_judged"


def test_a_correction_needs_a_reason_and_the_history_keeps_it(imr_participant, case_manager):
    event = services.record_event(imr_participant, by=case_manager, **an_event())
    with pytest.raises(Refused, match="reason"):
        services.correct_event(event, by=case_manager, reason=" ", outcome="ongoing")
    with pytest.raises(Refused, match="Nothing"):
        services.correct_event(event, by=case_manager, reason="x", outcome="resolved")
    services.correct_event(
        event, by=case_manager, reason="still on the ward", outcome="ongoing", onset_on=days_ago(6)
    )
    event.refresh_from_db()
    assert (event.outcome, event.onset_on) == ("ongoing", days_ago(6))
    latest, first = event.history.order_by("-history_id")[:2]
    assert latest.history_change_reason == "still on the ward"
    assert (first.outcome, latest.outcome) == ("resolved", "ongoing")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"onset_on": days_ago(-1)}, "future"),
        ({"onset_on": days_ago(101)}, "before randomization"),
        ({"kind": "beneficial"}, "category of beneficial"),
        ({"kind": "harm"}, "adverse or beneficial"),
        ({"category": "more_hope"}, "category of adverse"),
        ({"outcome": "better"}, "outcome"),
        ({"description": "   "}, "Describe"),
        ({"description": "x" * 2001}, "too long"),
        ({"seriousness": []}, "criteria"),
        ({"serious": False}, "criteria"),
        ({"seriousness": ["tragic"]}, "from the list"),
        (
            {"kind": "beneficial", "category": "more_hope", "outcome": "ongoing"},
            "not serious",
        ),
        (
            {
                "kind": "beneficial",
                "category": "other",
                "serious": False,
                "seriousness": [],
                "outcome": "fatal",
            },
            "not fatal",
        ),
        ({"category": "suicide", "outcome": "fatal"}, "death"),
        ({"category": "death", "seriousness": ["death"]}, "fatal"),
        ({"category": "symptoms_worse", "outcome": "fatal"}, "death"),
    ],
)
def test_an_invalid_event_is_refused_with_nothing_saved(
    imr_participant, case_manager, overrides, message
):
    with pytest.raises(Refused, match=message):
        services.record_event(imr_participant, by=case_manager, **an_event(**overrides))
    assert not SafetyEvent.objects.exists()
    assert not SafetyEvent.history.exists()


def test_a_death_is_recorded_fatal_and_serious(imr_participant, case_manager):
    event = services.record_event(
        imr_participant,
        by=case_manager,
        **an_event(category="suicide", outcome="fatal", seriousness=["hospitalisation", "death"]),
    )
    assert event.seriousness == ["death", "hospitalisation"]  # in the list's order


def test_an_invalid_correction_is_refused_with_nothing_changed(imr_participant, case_manager):
    event = services.record_event(imr_participant, by=case_manager, **an_event())
    with pytest.raises(Refused, match="criteria"):
        services.correct_event(event, by=case_manager, reason="no", serious=False)
    event.refresh_from_db()
    assert event.serious and event.history.count() == 1


def test_a_participant_not_yet_randomized_has_no_events(trial, coordinator, north, case_manager):
    from tests.factories import make_ready_participant

    waiting = make_ready_participant(trial, coordinator, site=north)
    with pytest.raises(Refused, match="randomization"):
        services.record_event(waiting, by=case_manager, **an_event())
    assert not SafetyEvent.objects.exists()


@pytest.mark.parametrize(
    "role",
    [
        Role.ASSESSOR,
        Role.DATA_MANAGER,
        Role.MONITOR,
        Role.STATISTICIAN,
        Role.INVESTIGATOR,
        Role.TRIAL_ADMIN,
        Role.COORDINATOR,  # unblinded, but rates nobody
        Role.KEY_HOLDER,
        Role.FIDELITY_RATER,
    ],
)
def test_only_unblinded_staff_raters_record_or_judge(imr_participant, case_manager, person, role):
    event = services.record_event(imr_participant, by=case_manager, **an_event())
    other = person(role, None, f"other-{role.value}")
    with pytest.raises(Refused, match="may not record"):
        services.record_event(imr_participant, by=other, **an_event())
    with pytest.raises(Refused, match="may not record"):
        services.correct_event(event, by=other, reason="x", outcome="ongoing")
    with pytest.raises(Refused, match="may not record"):
        services.judge_relatedness(event, by=other, relatedness="possible", judged_on=TODAY())
    assert SafetyEvent.objects.count() == 1 and event.history.count() == 1


def test_a_facilitator_may_record_events_as_unblinded_clinical_staff(imr_participant, facilitator):
    """A decision (safety.services): facilitators hold enter_staff_rating and see the arm, as
    case managers do, and were often the case managers of control participants; a harm they
    learn of is theirs to record."""
    event = services.record_event(imr_participant, by=facilitator, **an_event())
    assert event.entered_by == facilitator


def test_a_case_manager_records_only_at_their_own_site(south_participant, case_manager):
    with pytest.raises(Refused, match="may not record"):
        services.record_event(south_participant, by=case_manager, **an_event())
    assert not SafetyEvent.objects.exists()


def test_events_cannot_be_deleted(imr_participant, case_manager):
    from imrtrial.models import HardDeleteForbidden

    event = services.record_event(imr_participant, by=case_manager, **an_event())
    with pytest.raises(HardDeleteForbidden):
        event.delete()
    with pytest.raises(HardDeleteForbidden):
        SafetyEvent.objects.all().delete()
