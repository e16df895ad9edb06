"""Personal API tokens: shown once, hashed at rest, expiring, revocable by their user and the
trial administrator, never more than the user's role (now), refused without two-factor
enrolment where the role needs it, and rate limited per token."""

import datetime
import hashlib

import pytest
from django.core.cache import caches
from django.utils import timezone

from api import services
from api.models import ApiToken
from imrtrial.errors import Refused
from imrtrial.models import Membership, Perm, Role
from tests.api.conftest import Api, make_token
from tests.factories import make_totp_device


def test_a_token_made_on_the_account_page_is_shown_once_and_stored_only_as_a_digest(
    client, trial, data_manager
):
    client.force_login(data_manager)
    page = client.get("/account/api-tokens/")
    assert page.status_code == 200 and b"Make the token" in page.content
    response = client.post(
        "/account/api-tokens/",
        {
            "trial": trial.pk,
            "name": "R laptop",
            "permissions": [Perm.EXPORT_BLINDED.value],
            "days": "30",
        },
    )
    assert response.status_code == 201
    text = response.context["created"][1]
    assert text.startswith("imrt_") and text.encode() in response.content
    assert response["Cache-Control"].startswith("max-age=0")
    token = ApiToken.objects.get()
    secret = text.split("_", 2)[2]
    assert token.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(list(ApiToken.objects.values()))
    assert secret not in str(list(ApiToken.history.values()))
    again = client.get("/account/api-tokens/")
    assert text.encode() not in again.content and b"R laptop" in again.content
    assert Api(text).get("/api/v1/metadata/").status_code == 200


def test_a_wrong_secret_an_unknown_id_and_garbage_are_one_and_the_same_401(
    trial, data_manager, token
):
    text = token(data_manager)
    key_id = text.split("_")[1]
    for bad in (text[:-2] + "xx", f"imrt_ffffffffffff_{text.split('_', 2)[2]}", "nonsense"):
        response = Api(bad).get("/api/v1/metadata/")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid, revoked or expired token."}
    assert Api(f"imrt_{key_id}_").get("/api/v1/metadata/").status_code == 401
    assert Api(text).get("/api/v1/metadata/").status_code == 200


def test_an_expired_token_is_refused(trial, data_manager, token):
    text = token(data_manager)
    ApiToken.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert Api(text).get("/api/v1/metadata/").status_code == 401


def test_last_use_is_recorded(trial, data_manager, token):
    text = token(data_manager)
    assert ApiToken.objects.get().last_used_at is None
    Api(text).get("/api/v1/metadata/")
    assert ApiToken.objects.get().last_used_at is not None


def test_its_user_revokes_a_token_and_the_next_request_is_refused(
    client, trial, data_manager, token
):
    text = token(data_manager)
    row = ApiToken.objects.get()
    client.force_login(data_manager)
    assert client.post(f"/account/api-tokens/{row.pk}/revoke/").status_code == 302
    assert Api(text).get("/api/v1/metadata/").status_code == 401
    row.refresh_from_db()
    assert row.revoked_by == data_manager
    last = row.history.first()
    assert last.history_user == data_manager and last.revoked_at is not None


def test_the_trial_administrator_revokes_anyones_token_with_a_reason_and_others_may_not(
    client, trial, data_manager, trial_admin, assessor, token
):
    text = token(data_manager, name="Marigold circle sync")
    row = ApiToken.objects.get()
    client.force_login(assessor)
    assert client.post(f"/account/api-tokens/{row.pk}/revoke/").status_code == 404
    assert Api(text).get("/api/v1/metadata/").status_code == 200
    client.force_login(trial_admin)
    listing = client.get(f"/trials/{trial.key}/api-tokens/")
    assert listing.status_code == 200 and b"data_manager-all" in listing.content
    assert row.key_id.encode() in listing.content
    assert b"Marigold" not in listing.content  # the owner's free text: not to a blinded admin
    response = client.post(f"/account/api-tokens/{row.pk}/revoke/", {"reason": "left the unit"})
    assert response.status_code == 302
    assert Api(text).get("/api/v1/metadata/").status_code == 401
    assert row.history.first().history_change_reason == "left the unit"
    client.force_login(assessor)
    assert client.get(f"/trials/{trial.key}/api-tokens/").status_code == 404


def test_a_token_cannot_hold_a_permission_its_user_lacks(trial, assessor):
    with pytest.raises(Refused, match="do not hold"):
        services.create_token(assessor, trial, name="x", permissions=[Perm.EXPORT_BLINDED], days=30)
    assert not ApiToken.objects.exists()


def test_a_token_narrower_than_the_role_cannot_use_the_rest_of_the_role(trial, data_manager, token):
    """A data manager's token for exports only sees no record status, queries or import."""
    narrow = Api(token(data_manager, perms=[Perm.EXPORT_BLINDED]))
    assert narrow.get("/api/v1/records/").status_code == 200
    assert narrow.get("/api/v1/status/").status_code == 404
    assert narrow.get("/api/v1/queries/").status_code == 404
    full = Api(token(data_manager))
    assert full.get("/api/v1/status/").status_code == 200
    status_only = Api(token(data_manager, perms=[Perm.VERIFY_FORMS]))
    assert status_only.get("/api/v1/records/").status_code == 404


def test_a_withdrawn_role_takes_effect_on_the_next_request(trial, data_manager, token):
    api = Api(token(data_manager))
    assert api.get("/api/v1/records/").status_code == 200
    Membership.objects.filter(user=data_manager).update(active=False)
    assert api.get("/api/v1/records/").status_code == 404
    assert api.get("/api/v1/metadata/").status_code == 404


def test_a_token_is_for_its_trial_only(trial, data_manager, token):
    from tests.factories import grant, make_trial

    other = make_trial()
    grant(data_manager, other, Role.DATA_MANAGER)
    api = Api(token(data_manager, trial=other))
    assert api.get("/api/v1/metadata/").json()["key"] == other.key


def test_a_role_that_needs_two_factor_gets_no_token_until_enrolled(client, trial, coordinator):
    with pytest.raises(Refused, match="two-factor"):
        services.create_token(
            coordinator, trial, name="desk", permissions=[Perm.RANDOMIZE], days=30
        )
    make_totp_device(coordinator)
    _, text = services.create_token(
        coordinator, trial, name="desk", permissions=[Perm.RANDOMIZE], days=30
    )
    assert Api(text).get("/api/v1/metadata/").status_code == 404  # no data permission chosen
    # Enrolment removed (an administrator's reset): the token stops working at once.
    coordinator.totpdevice_set.all().delete()
    response = Api(text).get("/api/v1/metadata/")
    assert response.status_code == 401 and "two-factor" in response.json()["detail"]


def test_a_blinded_role_that_took_on_an_unblinded_one_needs_two_factor_for_its_token(
    trial, assessor, token
):
    text = token(assessor)
    assert Api(text).get("/api/v1/metadata/").status_code == 200
    from tests.factories import grant

    grant(assessor, trial, Role.FACILITATOR)
    assert Api(text).get("/api/v1/metadata/").status_code == 401


@pytest.mark.parametrize("days", [0, 366])
def test_an_expiry_beyond_the_limits_is_refused(trial, data_manager, days):
    with pytest.raises(Refused):
        services.create_token(
            data_manager, trial, name="x", permissions=[Perm.EXPORT_BLINDED], days=days
        )


def test_each_token_is_rate_limited_on_its_own(settings, trial, data_manager, token):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": __import__("os").environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
            "KEY_PREFIX": f"api-rate-{__import__('uuid').uuid4().hex}",
        }
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/min"},
    }
    first, second = Api(token(data_manager)), Api(token(data_manager))
    assert [first.get("/api/v1/metadata/").status_code for _ in range(3)] == [200] * 3
    refused = first.get("/api/v1/metadata/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert second.get("/api/v1/metadata/").status_code == 200
    assert type(caches["default"]).__name__ == "RedisCache"


def test_make_token_helper_enrols_where_needed(trial, coordinator):
    assert make_token(coordinator, trial, [Perm.RANDOMIZE]).startswith("imrt_")


def test_the_gate_narrowed_to_a_token_answers_for_its_trial_and_scope_only(
    trial, coordinator, data_manager
):
    from imrtrial import access
    from tests.factories import grant, make_trial

    other = make_trial()
    grant(coordinator, other, Role.COORDINATOR)
    access.narrow(coordinator, trial, [Perm.RANDOMIZE])
    assert access.has(coordinator, Perm.RANDOMIZE, trial)
    assert not access.has(coordinator, Perm.VIEW_UNBLINDED, trial)
    assert not access.may_see_allocation(coordinator, trial)
    assert not access.has(coordinator, Perm.RANDOMIZE, other)
    assert not access.sites_where(coordinator, Perm.RANDOMIZE, other).exists()
    access.forget(coordinator)  # a new request: the whole role again
    assert access.may_see_allocation(coordinator, other)
    # A scope the user does not hold (any more) grants nothing.
    access.narrow(data_manager, trial, [Perm.RANDOMIZE])
    assert not access.has(data_manager, Perm.RANDOMIZE, trial)
