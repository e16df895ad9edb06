"""The end of a participant's follow-up: exclusion after randomization, death, and the reasons a
visit was missed; and visits anchored on the baseline date."""

import datetime

import pytest
from django.utils import timezone

from assessments import services as crf
from assessments.models import Death, ExclusionAfterRandomization, Visit
from imrtrial.errors import Refused
from imrtrial.models import Participant, Role, Timepoint
from randomization import services as desk
from tests.factories import make_allocation, make_person, make_ready_participant

DAY = datetime.timedelta(days=1)


def today():
    return timezone.localdate()


@pytest.fixture
def world(trial):
    Timepoint.objects.create(
        trial=trial,
        code="baseline",
        label="Baseline",
        order=0,
        anchor=Timepoint.Anchor.ENROLMENT,
        window_before_days=0,
        window_after_days=60,
        instruments=["gaf_f"],
    )
    for order, (code, days) in enumerate((("post", 100), ("followup", 300)), start=1):
        Timepoint.objects.create(
            trial=trial,
            code=code,
            label=code.title(),
            order=order,
            offset_days=days,
            window_before_days=10,
            window_after_days=10,
            instruments=["gaf_f"],
        )
    desk_user = make_person(trial, Role.COORDINATOR, username="desk")
    dm = make_person(trial, Role.DATA_MANAGER, username="dm")
    participant = make_ready_participant(trial, desk_user)
    make_allocation(participant, "tau", by=desk_user)
    Participant.objects.filter(pk=participant.pk).update(randomized_on=today() - 150 * DAY)
    crf.schedule_visits(trial)
    participant = Participant.objects.get(pk=participant.pk)
    return trial, participant, desk_user, dm


def visit(participant, code):
    return Visit.objects.get(participant=participant, timepoint__code=code)


def test_a_death_ends_the_schedule_and_marks_the_visits_it_ends(world):
    trial, participant, desk_user, _ = world
    post = visit(participant, "post")
    crf.save_entry(
        post,
        "gaf_f",
        {"gaf_f": "40"},
        by=make_person(trial, Role.ASSESSOR),
        kind="single",
        complete=True,
    )
    died_on = today() - 20 * DAY
    death = crf.record_death(participant, by=desk_user, died_on=died_on, cause="natural")
    assert Death.objects.get() == death
    participant.refresh_from_db()
    assert participant.status == Participant.Status.DIED
    post.refresh_from_db()
    assert post.completed_on is not None and not post.missed  # done before the death: kept
    followup = visit(participant, "followup")
    assert followup.missed and followup.missed_because == Visit.MissedBecause.DIED
    assert followup.history.first().history_change_reason == "the participant died"
    with pytest.raises(Refused, match="already ended"):
        crf.record_death(participant, by=desk_user, died_on=died_on)


@pytest.mark.parametrize(
    "died_on, message",
    [(1, "cannot be in the future"), (-200, "cannot come before the randomization")],
)
def test_an_impossible_date_of_death_is_refused_with_nothing_saved(world, died_on, message):
    _, participant, desk_user, _ = world
    with pytest.raises(Refused, match=message):
        crf.record_death(participant, by=desk_user, died_on=today() + died_on * DAY)
    assert not Death.objects.exists()
    assert Participant.objects.get(pk=participant.pk).status == Participant.Status.RANDOMIZED


def test_an_exclusion_keeps_the_category_who_decided_and_the_reason(world):
    _, participant, desk_user, _ = world
    exclusion = crf.exclude_after_randomization(
        participant,
        "ineligible",
        by=desk_user,
        decided_by="Steering committee",
        excluded_on=today(),
        reason="The diagnosis was not confirmed",
    )
    assert (exclusion.category, exclusion.decided_by) == ("ineligible", "Steering committee")
    assert Participant.objects.get(pk=participant.pk).status == Participant.Status.EXCLUDED
    # No more visits, reminders or forms: the scheduler leaves an excluded participant alone.
    assert crf.schedule_participant_visits(Participant.objects.get(pk=participant.pk)) == 0


@pytest.mark.parametrize(
    "category, decided_by, reason, message",
    [
        ("changed_mind", "The group", "why", "category"),
        ("withdrew_consent", " ", "why", "who decided and why"),
        ("withdrew_consent", "The group", "", "who decided and why"),
    ],
)
def test_an_incomplete_exclusion_is_refused_with_nothing_saved(
    world, category, decided_by, reason, message
):
    _, participant, desk_user, _ = world
    with pytest.raises(Refused, match=message):
        crf.exclude_after_randomization(
            participant,
            category,
            by=desk_user,
            decided_by=decided_by,
            excluded_on=today(),
            reason=reason,
        )
    assert not ExclusionAfterRandomization.objects.exists()


def test_an_allocation_made_in_error_is_not_excluded_twice(world):
    _, participant, desk_user, _ = world
    desk.mark_in_error(participant.allocation, by=desk_user, reason="randomized twice")
    with pytest.raises(Refused, match="made in error"):
        crf.exclude_after_randomization(
            participant,
            "research_group",
            by=desk_user,
            decided_by="The group",
            excluded_on=today(),
            reason="x",
        )


def test_a_blinded_assessor_may_not_record_an_exclusion_or_a_death(world):
    trial, participant, _, _ = world
    assessor = make_person(trial, Role.ASSESSOR, username="rater2")
    with pytest.raises(Refused):
        crf.record_death(participant, by=assessor, died_on=today())
    with pytest.raises(Refused):
        crf.exclude_after_randomization(
            participant,
            "research_group",
            by=assessor,
            decided_by="x",
            excluded_on=today(),
            reason="x",
        )


def test_a_missed_visit_keeps_why_and_death_is_recorded_only_as_a_death(world):
    _, participant, _, dm = world
    post = visit(participant, "post")
    with pytest.raises(Refused, match="Record the death"):
        crf.mark_missed(post, by=dm, reason="died", because=Visit.MissedBecause.DIED)
    with pytest.raises(Refused, match="Choose why"):
        crf.mark_missed(post, by=dm, reason="gone", because="abroad")
    crf.mark_missed(post, by=dm, reason="Moved to Aarhus", because=Visit.MissedBecause.MOVED)
    post.refresh_from_db()
    assert post.missed and post.missed_because == "moved"


def test_a_visit_anchored_on_the_baseline_date_is_dated_when_the_baseline_is_done(trial):
    Timepoint.objects.create(
        trial=trial,
        code="baseline",
        label="Baseline",
        order=0,
        anchor=Timepoint.Anchor.ENROLMENT,
        window_before_days=0,
        window_after_days=60,
        instruments=["gaf_f"],
    )
    Timepoint.objects.create(
        trial=trial,
        code="post",
        label="Post",
        order=1,
        anchor=Timepoint.Anchor.BASELINE,
        offset_days=90,
        instruments=["gaf_f"],
    )
    desk_user = make_person(trial, Role.COORDINATOR, username="desk")
    participant = make_ready_participant(trial, desk_user, baseline=False)
    make_allocation(participant, "imr", by=desk_user)
    Participant.objects.filter(pk=participant.pk).update(randomized_on=today())
    crf.schedule_visits(trial)
    assert not Visit.objects.filter(timepoint__code="post").exists()  # no baseline date yet
    crf.save_entry(
        visit(participant, "baseline"),
        "gaf_f",
        {"gaf_f": "50"},
        by=make_person(trial, Role.ASSESSOR),
        kind="single",
        complete=True,
    )
    post = visit(participant, "post")
    assert post.target_date == today() + 90 * DAY


def test_a_consent_withdrawal_after_a_death_keeps_the_participant_dead(world):
    """Level 3 after a death erases the data as asked, but the status says why follow-up
    ended first: the death."""
    _, participant, desk_user, _ = world
    crf.record_death(participant, by=desk_user, died_on=today() - DAY)
    crf.withdraw(
        Participant.objects.get(pk=participant.pk),
        3,
        by=desk_user,
        reason="The family asked for the data to be erased",
        withdrawn_on=today(),
    )
    assert Participant.objects.get(pk=participant.pk).status == Participant.Status.DIED


def test_the_daily_backstop_adds_no_visit_to_a_locked_casebook(world):
    """schedule_visits (the daily job's backstop) leaves a locked casebook as it is: a visit the
    schedule lacks is not created for a participant whose casebook is locked, and is once it is
    unlocked."""
    trial, participant, _, dm = world
    missing = Visit.objects.filter(participant=participant).order_by("-target_date").first()
    Visit.objects.filter(pk=missing.pk).delete()  # a visit the schedule lacks
    crf.lock_casebook(participant, by=dm, reason="clean")
    assert crf.schedule_visits(trial) == 0
    assert not Visit.objects.filter(participant=participant, timepoint=missing.timepoint).exists()
    crf.unlock_casebook(Participant.objects.get(pk=participant.pk), by=dm, reason="one more")
    assert crf.schedule_visits(trial) == 1
