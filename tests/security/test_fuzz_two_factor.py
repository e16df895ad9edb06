"""Hypothesis against the two-factor code forms, from a session that has not passed them: any
input is answered without a 500, and nothing is confirmed or verified by it."""

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imrtrial.models import Role
from tests.factories import grant, make_totp_device, make_user

from .test_fuzz import NASTY

pytestmark = [pytest.mark.django_db, pytest.mark.two_factor]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PAYLOAD = st.dictionaries(
    st.sampled_from(["token", "next", "csrfmiddlewaretoken", "x" * 300]),
    st.one_of(NASTY, st.lists(NASTY, max_size=3)),
)


def test_the_code_form_survives_any_input_and_verifies_nothing(trial):
    user = make_user("fuzz-desk")
    grant(user, trial, Role.COORDINATOR)
    make_totp_device(user)
    client = Client(raise_request_exception=False)
    client.force_login(user)  # password only: the two_factor mark
    url = reverse("two_factor:verify")

    @FUZZ
    @given(payload=PAYLOAD)
    def fuzz(payload):
        response = client.post(url, payload)
        assert response.status_code < 500, payload
        assert client.get(reverse("home")).status_code == 302  # still sent to the code

    fuzz()


def test_the_enrolment_form_survives_any_input_and_confirms_nothing(trial):
    user = make_user("fuzz-assessor")
    grant(user, trial, Role.ASSESSOR)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    url = reverse("two_factor:enrol")
    assert client.get(url).status_code == 200

    @FUZZ
    @given(payload=PAYLOAD)
    def fuzz(payload):
        response = client.post(url, payload)
        assert response.status_code < 500, payload
        assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()

    fuzz()
