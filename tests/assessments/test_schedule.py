"""Visits are scheduled by the services that enrol and randomize (imrtrial.lifecycle), and by
the daily job as the backstop; never by a page on GET."""

import pytest
from django.urls import reverse

from assessments.models import Visit
from randomization import services as randomization
from tests.factories import make_allocation, make_ready_participant

pytestmark = pytest.mark.django_db


def test_randomizing_schedules_the_follow_up_visits(danish, coordinator):
    p = make_ready_participant(danish, coordinator)
    assert set(p.visits.values_list("timepoint__code", flat=True)) == {"baseline"}  # enrolment
    randomization.randomize(p, by=coordinator)
    assert set(p.visits.values_list("timepoint__code", flat=True)) == {
        "baseline",
        "post",
        "followup",
    }


def test_pages_write_nothing_on_get(client, danish, coordinator, assessor):
    """A participant allocated without the service (as after a restore) has no visits yet:
    the worklist and the participant page show that, and schedule nothing."""
    p = make_ready_participant(danish, coordinator)
    make_allocation(p, "tau", by=coordinator)
    type(p).objects.filter(pk=p.pk).update(randomized_on=p.created_at.date())
    before = Visit.objects.count()
    client.force_login(coordinator)
    assert (
        client.get(
            reverse("assessments:participant_detail", args=[danish.key, p.participant_id])
        ).status_code
        == 200
    )
    client.force_login(assessor)
    assert client.get(reverse("assessments:worklist", args=[danish.key])).status_code == 200
    assert Visit.objects.count() == before


def test_the_randomization_call_writes_the_visits_the_daily_backstop_would(danish, coordinator):
    """schedule_participant_visits writes its visits in SQL of its own (the phone desk's call
    path); the daily job writes them with bulk_create. Both give the same rows."""
    from assessments import services as assessments

    called = make_ready_participant(danish, coordinator)
    randomization.randomize(called, by=coordinator)
    called.refresh_from_db()
    restored = make_ready_participant(danish, coordinator)
    make_allocation(restored, "tau", by=coordinator)
    type(restored).objects.filter(pk=restored.pk).update(
        status=called.status, randomized_on=called.randomized_on
    )
    assert assessments.schedule_visits(danish) == 2  # post and follow-up, by the backstop

    def rows(participant):
        fields = [f.attname for f in Visit._meta.concrete_fields]
        fields = [f for f in fields if f not in ("id", "participant_id")]
        return {
            row["timepoint_id"]: row
            for row in Visit.objects.filter(participant=participant).values(*fields)
        }

    assert rows(called) == rows(restored)
    assert len(rows(called)) == 3


def test_a_long_worklist_shows_its_first_rows_and_how_many_there_are(
    client, danish, coordinator, assessor, monkeypatch
):
    """The worklist lists the soonest deadlines up to its limit and says how many are due in
    all (counted by the same statement as the rows); each row links its visit's page."""
    from assessments import views

    participants = [make_ready_participant(danish, coordinator) for _ in range(3)]
    due = Visit.objects.filter(participant__in=participants)
    assert due.count() == 3  # each one's baseline, due from enrolment
    monkeypatch.setattr(views, "WORKLIST_ROWS", 2)
    client.force_login(assessor)
    page = client.get(reverse("assessments:worklist", args=[danish.key])).content.decode()
    assert "the first 2 of 3" in page
    shown = [v for v in due if reverse("assessments:visit", args=[danish.key, v.pk]) in page]
    assert len(shown) == 2
    monkeypatch.setattr(views, "WORKLIST_ROWS", 100)
    page = client.get(reverse("assessments:worklist", args=[danish.key])).content.decode()
    assert "the first" not in page
    assert all(reverse("assessments:visit", args=[danish.key, v.pk]) in page for v in due)
