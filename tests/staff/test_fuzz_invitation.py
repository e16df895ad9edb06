"""Bad input on the invitation link's password form (which the project-wide fuzzer cannot reach:
the token is only in the e-mail, and it is spent by its first use): never a 500, and when the
answer is the form again or a 4xx, nothing saved: no password, the link still unused."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imrtrial.models import Role
from staff import services
from staff.models import Invitation, token_digest
from tests.security.test_fuzz import NASTY, table_counts

pytestmark = pytest.mark.django_db

FIELDS = ("new_password1", "new_password2")


def _fresh_link(trial, by, n):
    tokens = []
    services.invite(
        trial,
        email=f"fuzz{n}@example.org",
        first_name="F",
        last_name="Z",
        role=Role.ASSESSOR,
        site=None,
        by=by,
        reason="fuzz",
        link_for=lambda token: tokens.append(token) or "",
    )
    return tokens[0]


def test_the_invitation_form_survives_bad_input_and_saves_nothing_when_refused(trial, trial_admin):
    counter = iter(range(10_000))
    payloads = st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(NASTY, st.lists(NASTY, min_size=2, max_size=3)) for name in FIELDS
        },
    )

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(payload=payloads, same=st.booleans())
    def fuzz(payload, same):
        if same and "new_password1" in payload:
            payload = {**payload, "new_password2": payload["new_password1"]}
        token = _fresh_link(trial, trial_admin, next(counter))
        invitation = Invitation.objects.get(token_hash=token_digest(token))
        before = table_counts()
        response = Client(raise_request_exception=False).post(f"/invitation/{token}/", payload)
        assert response.status_code < 500
        user = get_user_model().objects.get(pk=invitation.user_id)
        invitation.refresh_from_db()
        if response.status_code == 302:
            assert invitation.used_at is not None and user.has_usable_password()
        else:
            assert invitation.used_at is None and not user.has_usable_password()
            assert table_counts() == before

    fuzz()


def test_the_new_link_form_survives_bad_input_and_saves_nothing_when_refused(
    client, trial, trial_admin
):
    _fresh_link(trial, trial_admin, "resend")
    invited = get_user_model().objects.get(email="fuzzresend@example.org")
    client.force_login(trial_admin)
    url = f"/trials/{trial.key}/administration/staff/{invited.pk}/resend/"
    assert 'name="resend-reason"' in client.get(url.replace("resend/", "")).content.decode()

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(payload=st.fixed_dictionaries({}, optional={"resend-reason": NASTY}))
    def fuzz(payload):
        before = table_counts()
        response = client.post(url, payload)
        assert response.status_code < 500
        if response.status_code != 302:
            assert table_counts() == before

    fuzz()
