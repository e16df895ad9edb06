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
