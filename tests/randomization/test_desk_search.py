"""The phone desk's search (issue 16): a caller's name or phone finds their screening for a user
the gate lets see identifying details, and for no one else; the rows shown are the same
columns as any search (never the name or phone), and a hit by name or phone is logged."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from imrtrial.models import AccessLog, Role
from randomization import services
from tests.factories import yes_to_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def screening(danish, coordinator):
    site = danish.sites.order_by("code").first()
    return services.screen(
        danish,
        site,
        by=coordinator,
        answers=yes_to_all(danish),
        screened_on="2026-11-02",
        full_name="Ada Quennell-Jensen",
        phone="+45 12 34-56 78",
    )


def _link(trial, screening):
    """The result row's link (the number alone is also in the search box's placeholder)."""
    url = reverse("randomization:screening", args=[trial.key, screening.screening_number])
    return f'href="{url}"'


def _search(client, trial, q):
    return client.get(reverse("randomization:desk", args=[trial.key]), {"q": q}).content.decode()


@pytest.mark.parametrize("q", ["quennell", "Ada Quennell", "12345678", "+45 1234 5678"])
def test_a_coordinator_finds_a_caller_by_name_or_phone(client, danish, coordinator, screening, q):
    client.force_login(coordinator)
    page = _search(client, danish, q)
    assert _link(danish, screening) in page
    # The result says no more than any other search: not the name, not the phone.
    assert "Quennell" not in page.replace(q, "") and "34-56" not in page
    assert AccessLog.objects.filter(
        user=coordinator, action=AccessLog.Action.VIEW_IDENTIFYING
    ).exists()
    assert "Next caller" in page and "data-print" in page


def test_a_search_that_matches_no_one_finds_nothing_and_logs_nothing(
    client, danish, coordinator, screening
):
    client.force_login(coordinator)
    page = _search(client, danish, "Bartholomew")
    assert _link(danish, screening) not in page and "No screenings match" in page
    assert not AccessLog.objects.filter(action=AccessLog.Action.VIEW_IDENTIFYING).exists()
    # Too short to be a phone number: no match on a fragment of digits.
    assert _link(danish, screening) not in _search(client, danish, "1234")


def test_without_the_right_to_see_identifying_details_name_and_phone_find_nothing(
    client, danish, coordinator, screening
):
    Group.objects.get(name=Role.COORDINATOR.value).permissions.remove(
        Permission.objects.get(codename="view_identifying")
    )
    client.force_login(coordinator)
    for q in ("Quennell", "12345678"):
        assert _link(danish, screening) not in _search(client, danish, q)
    page = _search(client, danish, screening.screening_number)
    assert _link(danish, screening) in page
    assert "caller's name or phone" not in page
    assert not AccessLog.objects.filter(action=AccessLog.Action.VIEW_IDENTIFYING).exists()


@pytest.mark.parametrize("role", [Role.ASSESSOR, Role.DATA_MANAGER, Role.TRIAL_ADMIN])
def test_blinded_roles_cannot_search_the_desk_at_all(client, danish, person, screening, role):
    client.force_login(person(role))
    response = client.get(reverse("randomization:desk", args=[danish.key]), {"q": "Quennell"})
    assert response.status_code == 404


def test_a_search_by_screening_number_is_not_logged_as_a_look_at_identifying_details(
    client, danish, coordinator, screening
):
    client.force_login(coordinator)
    page = _search(client, danish, screening.screening_number.lower())
    assert _link(danish, screening) in page
    assert not AccessLog.objects.filter(action=AccessLog.Action.VIEW_IDENTIFYING).exists()
