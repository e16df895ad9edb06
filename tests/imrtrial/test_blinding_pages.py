"""A blinded role gets 404 for allocation-revealing pages. That it sees no arm anywhere it can
reach is the crawler's to prove (tests/security/test_crawler.py)."""

import re

import pytest
from django.urls import reverse

from imrtrial.models import AccessLog, Role
from tests.factories import make_allocation, make_participant

from .test_roles_and_access import BLINDED_ROLES


@pytest.fixture
def allocated(trial, coordinator):
    imr = make_participant(trial, participant_id="P-IMR")
    tau = make_participant(trial, participant_id="P-TAU")
    make_allocation(imr, "imr", by=coordinator)
    make_allocation(tau, "tau", by=coordinator)
    return imr, tau


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_blinded_role_gets_404_on_allocation_pages(role, person, client, trial, allocated):
    client.force_login(person(role))
    assert client.get(reverse("randomization:allocations", args=[trial.key])).status_code == 404


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_blinded_participant_pages_read_the_same_for_both_arms(
    role, person, client, trial, allocated
):
    client.force_login(person(role))
    url = "assessments:participant_detail"
    pages = []
    for participant in allocated:
        html = client.get(reverse(url, args=[trial.key, participant.participant_id])).content
        html = html.decode().replace(participant.participant_id, "P-X")
        pages.append(re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html))
    assert pages[0] == pages[1]


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_blinded_role_cannot_see_allocations_in_the_admin(role, person, client, allocated):
    user = person(role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    response = client.get("/admin/randomization/allocation/")
    assert response.status_code in (302, 403, 404)
    assert b"IMR + TAU" not in response.content


def test_unblinded_coordinator_looks_up_an_allocation_and_the_view_is_logged(
    client, trial, coordinator, allocated
):
    client.force_login(coordinator)
    url = reverse("randomization:allocations", args=[trial.key])
    response = client.get(url, {"participant": "P-IMR"})
    assert response.status_code == 200
    # One participant at a time: never the other arms in order (tests/randomization/
    # test_desk_views.py has the whole rule).
    assert b"IMR + TAU" in response.content and b"P-TAU" not in response.content
    log = AccessLog.objects.get(user=coordinator)
    assert log.action == AccessLog.Action.VIEW_ALLOCATION


def test_facilitator_looks_up_only_allocations_of_their_site(client, trial, person, north, south):
    facilitator = person(Role.FACILITATOR, site=north)
    coordinator = person(Role.COORDINATOR)
    make_allocation(make_participant(trial, site=north, participant_id="N-1"), by=coordinator)
    make_allocation(make_participant(trial, site=south, participant_id="S-1"), by=coordinator)
    client.force_login(facilitator)
    url = reverse("randomization:allocations", args=[trial.key])
    assert b"IMR + TAU" in client.get(url, {"participant": "N-1"}).content
    assert b"IMR + TAU" not in client.get(url, {"participant": "S-1"}).content


def test_participant_of_another_site_is_404_not_403(client, trial, person, north, south):
    assessor = person(Role.ASSESSOR, site=north)
    elsewhere = make_participant(trial, site=south)
    client.force_login(assessor)
    url = reverse("assessments:participant_detail", args=[trial.key, elsewhere.participant_id])
    assert client.get(url).status_code == 404


def test_blinded_auditor_sees_no_allocation_views_in_the_access_log(
    client, trial, person, coordinator, allocated
):
    client.force_login(coordinator)
    client.get(reverse("randomization:allocations", args=[trial.key]), {"participant": "P-IMR"})
    assert AccessLog.objects.filter(action=AccessLog.Action.VIEW_ALLOCATION).exists()
    client.force_login(person(Role.DATA_MANAGER))
    page = client.get(reverse("access_log", args=[trial.key])).content.decode()
    assert "Viewed allocation data" not in page
