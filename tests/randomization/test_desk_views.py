"""The phone desk through HTTP, as a coordinator, and as every blinded role."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from imrtrial.models import AccessLog, Participant, Role
from randomization.models import Allocation, Withdrawal
from tests.factories import grant, make_ready_participant, make_user, yes_to_all

from .conftest import coordinator_of

pytestmark = pytest.mark.django_db
BLINDED = [Role.ASSESSOR, Role.DATA_MANAGER, Role.STATISTICIAN, Role.TRIAL_ADMIN]


def screening_post(trial, site, **extra):
    data = {
        "site": site.pk,
        "screened_on": "2026-11-02",
        "referral_source": "GP",
        "full_name": "Ada Jensen",
        "national_id": "010190-1234",
        "phone": "12345678",
        "consent_date": "2026-11-02",
        "consent_form_version": "2.0",
        "consent_obtained_by": "Dr Who",
    }
    data |= {f"c_{code}": "yes" if ok else "no" for code, ok in yes_to_all(trial).items()}
    data.update(extra)
    return data


def test_a_coordinator_screens_enrols_and_randomizes_and_a_refresh_allocates_nothing(
    client, danish, desk_user, django_capture_on_commit_callbacks
):
    desk_user.email = "desk@example.org"
    desk_user.save(update_fields=["email"])
    coordinator_of(danish, desk_user)
    client.force_login(desk_user)
    site = danish.sites.first()
    response = client.post(
        reverse("randomization:screen", args=[danish.key]), screening_post(danish, site)
    )
    assert response.status_code == 302
    screening_url = response["Location"]
    page = client.get(screening_url).content.decode()
    assert "Eligible" in page and "Ada Jensen" in page
    response = client.post(screening_url, {"enrol": "1", "diagnosis": "bipolar"})
    participant = Participant.objects.get()
    assert participant.factor_levels == {"diagnosis": "bipolar"}
    randomize_url = reverse(
        "randomization:randomize", args=[danish.key, participant.participant_id]
    )
    assert response["Location"] == randomize_url
    page = client.get(randomize_url).content.decode()
    assert "Bipolar disorder (F31.x)" in page and site.name in page
    form = {"baseline_completed_on": "2026-11-01", "read_back": "on"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(randomize_url, form)
    result_url = reverse("randomization:result", args=[danish.key, participant.participant_id])
    assert response["Location"] == result_url
    allocation = Allocation.objects.get()
    page = client.get(result_url).content.decode()
    assert allocation.arm.label in page and allocation.confirmation_code in page
    assert allocation.randomization_number in page
    # The caller's line drops and the coordinator presses Randomize again.
    again = client.post(randomize_url, form)
    assert again["Location"] == result_url
    assert Allocation.objects.count() == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["desk@example.org"]
    assert AccessLog.objects.filter(action=AccessLog.Action.VIEW_ALLOCATION).exists()


def test_a_bad_screening_is_refused_with_field_errors_and_nothing_saved(client, danish, desk_user):
    coordinator_of(danish, desk_user)
    client.force_login(desk_user)
    data = screening_post(
        danish, danish.sites.first(), screened_on="2999-01-01", consent_form_version=""
    )
    del data["c_adult"]
    response = client.post(reverse("randomization:screen", args=[danish.key]), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "cannot be in the future" in page
    assert "Consent needs all three" in page
    assert "This field is required" in page
    assert not danish.screenings.exists()


def test_the_randomize_page_refuses_without_read_back_and_allocates_nothing(
    client, danish, desk_user
):
    coordinator_of(danish, desk_user)
    p = make_ready_participant(danish, desk_user)
    client.force_login(desk_user)
    url = reverse("randomization:randomize", args=[danish.key, p.participant_id])
    response = client.post(url, {})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not Allocation.objects.exists()


@pytest.mark.parametrize("role", BLINDED)
def test_every_desk_page_is_404_for_blinded_roles(role, client, danish, desk_user):
    coordinator_of(danish, desk_user)
    p = make_ready_participant(danish, desk_user)
    client.force_login(desk_user)
    client.post(
        reverse("randomization:randomize", args=[danish.key, p.participant_id]), {"read_back": "on"}
    )
    user = make_user(f"blind-{role}")
    grant(user, danish, role)
    client.force_login(user)
    number = p.screening.screening_number
    pid = p.participant_id
    for name, args in [
        ("desk", []),
        ("screen", []),
        ("screening", [number]),
        ("randomize", [pid]),
        ("result", [pid]),
        ("in_error", [pid]),
        ("allocations", []),
    ]:
        url = reverse(f"randomization:{name}", args=[danish.key, *args])
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"reason": "x", "read_back": "on"}).status_code == 404, url
    assert Allocation.objects.get().in_error is False


@pytest.mark.parametrize("role", BLINDED)
def test_blinded_roles_see_no_identifying_details_and_no_level_1_withdrawal(
    role, client, danish, desk_user
):
    coordinator_of(danish, desk_user)
    p = make_ready_participant(danish, desk_user, full_name="Ada Jensen", national_id="010190-1234")
    client.force_login(desk_user)
    client.post(
        reverse("randomization:randomize", args=[danish.key, p.participant_id]), {"read_back": "on"}
    )
    Withdrawal.objects.create(
        participant=p,
        level=1,
        withdrawn_on="2026-11-05",
        reason="stopped groups",
        recorded_by=desk_user,
    )
    user = make_user(f"blind2-{role}")
    grant(user, danish, role)
    client.force_login(user)
    page = client.get(
        reverse("assessments:participant_detail", args=[danish.key, p.participant_id])
    ).content.decode()
    for secret in ["Ada Jensen", "010190", "stopped groups", "Stops the intervention"]:
        assert secret not in page


def test_a_coordinator_flags_an_allocation_in_error_with_a_reason(client, danish, desk_user):
    coordinator_of(danish, desk_user)
    p = make_ready_participant(danish, desk_user)
    client.force_login(desk_user)
    client.post(
        reverse("randomization:randomize", args=[danish.key, p.participant_id]), {"read_back": "on"}
    )
    url = reverse("randomization:in_error", args=[danish.key, p.participant_id])
    client.post(url, {"reason": ""})
    assert not Allocation.objects.get().in_error
    client.post(url, {"reason": "Randomized the wrong person"})
    assert Allocation.objects.get().in_error


def test_no_desk_page_shows_block_sizes_or_future_slots(client, danish, desk_user):
    coordinator_of(danish, desk_user)
    p = make_ready_participant(danish, desk_user)
    client.force_login(desk_user)
    client.post(
        reverse("randomization:randomize", args=[danish.key, p.participant_id]), {"read_back": "on"}
    )
    pages = [
        client.get(reverse(f"randomization:{name}", args=[danish.key, *args])).content.decode()
        for name, args in [("desk", []), ("result", [p.participant_id]), ("allocations", [])]
    ]
    for page in pages:
        text = re.sub(r"<[^>]+>", " ", page).lower()
        assert "block" not in text and "slot" not in text and "next allocation" not in text
