"""The pages that end a participant's follow-up, from the seats of those who record and of a
blinded reader."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from assessments.models import Death, ExclusionAfterRandomization
from imrtrial.access import TEXT_WITHHELD
from imrtrial.models import Participant, Role
from tests.factories import grant, make_allocation, make_person, make_ready_participant, make_user

ARM_WORDS = "only one left in her IMR group"


@pytest.fixture
def randomized(trial, north):
    desk = make_person(trial, Role.COORDINATOR, north, username="desk")
    participant = make_ready_participant(trial, desk, site=north)
    make_allocation(participant, "imr", by=desk)
    Participant.objects.filter(pk=participant.pk).update(randomized_on=timezone.localdate())
    return Participant.objects.get(pk=participant.pk)


def url(name, participant):
    return reverse(f"assessments:{name}", args=[participant.trial.key, participant.participant_id])


def test_an_unblinded_coordinator_excludes_and_a_blinded_reader_sees_no_typed_text(
    client, trial, north, randomized
):
    author = make_user("desk-and-groups")
    grant(author, trial, Role.COORDINATOR, north)
    grant(author, trial, Role.FACILITATOR, north)  # unblinded: their words may name the arm
    client.force_login(author)
    response = client.post(
        url("exclude", randomized),
        {
            "category": "research_group",
            "excluded_on": timezone.localdate().isoformat(),
            "decided_by": "IMR team leader",
            "reason": ARM_WORDS,
        },
    )
    assert response.status_code == 302
    assert ExclusionAfterRandomization.objects.get().category == "research_group"

    reader = make_person(trial, Role.DATA_MANAGER, north, username="dm")
    client.force_login(reader)
    page = client.get(url("participant_detail", randomized)).content.decode()
    assert "Excluded after randomization" in page and "Decision of the research group" in page
    assert ARM_WORDS not in page and "IMR team leader" not in page
    assert TEXT_WITHHELD.replace("'", "&#x27;") in page or TEXT_WITHHELD in page


def test_blinded_assessors_get_neither_page_nor_link(client, trial, north, randomized):
    assessor = make_person(trial, Role.ASSESSOR, north, username="rater")
    client.force_login(assessor)
    page = client.get(url("participant_detail", randomized)).content.decode()
    assert url("exclude", randomized) not in page and url("death", randomized) not in page
    for name in ("exclude", "death"):
        assert client.get(url(name, randomized)).status_code == 404
        assert client.post(url(name, randomized), {"died_on": "2026-01-01"}).status_code == 404
    assert not Death.objects.exists()


def test_a_death_in_the_future_is_refused_on_the_page_with_nothing_saved(
    client, trial, north, randomized
):
    client.force_login(Participant.objects.get(pk=randomized.pk).screening.screened_by)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = client.post(url("death", randomized), {"died_on": tomorrow.isoformat()})
    assert response.status_code == 200 and not Death.objects.exists()
    response = client.post(
        url("death", randomized), {"died_on": timezone.localdate().isoformat(), "cause": "natural"}
    )
    assert response.status_code == 302
    assert Participant.objects.get(pk=randomized.pk).status == Participant.Status.DIED
    page = client.get(url("participant_detail", randomized)).content.decode()
    assert "Died" in page and url("death", randomized) not in page
