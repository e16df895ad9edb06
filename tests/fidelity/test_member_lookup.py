"""Adding a member to an IMR group (issue 16): the id is found whatever case it is typed in."""

import pytest
from django.urls import reverse

from fidelity.models import GroupMembership

from .conftest import randomized

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.fidelity.urls")]


@pytest.mark.parametrize("typed", ["dk-imr", " Dk-Imr ", "DK-IMR"])
def test_a_member_id_is_found_whatever_its_case(client, danish, site_a, group, facilitators, typed):
    imr = randomized(danish, site_a, "imr", pid="DK-IMR")
    client.force_login(facilitators[0])
    add = reverse("fidelity:member_add", args=[danish.key, group.pk])
    response = client.post(add, {"participant_id": typed, "joined_on": "2026-01-05"})
    assert response.status_code == 302
    assert GroupMembership.objects.get().participant == imr


def test_an_unknown_id_in_any_case_is_still_refused(client, danish, site_a, group, facilitators):
    randomized(danish, site_a, "imr", pid="DK-IMR")
    client.force_login(facilitators[0])
    add = reverse("fidelity:member_add", args=[danish.key, group.pk])
    page = client.post(add, {"participant_id": "dk-imr-2", "joined_on": "2026-01-05"})
    assert "No participant with that id at your sites." in page.content.decode()
    assert not GroupMembership.objects.exists()
