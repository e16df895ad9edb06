"""Login, lockout, idle timeout, CSRF and security headers."""

import datetime as dt
import re

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from imrtrial.middleware import RENEWED_KEY
from tests.factories import make_user

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"


def login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_a_user_signs_in_and_lands_on_the_home_page(client):
    make_user("ada")
    response = login(client, "ada", PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_pages_need_a_signed_in_user(client, trial):
    response = client.get(reverse("assessments:participant_list", args=[trial.key]))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_repeated_failures_lock_the_account_even_for_the_right_password(client):
    make_user("bob")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "bob", "wrong-password").status_code == 200
    assert login(client, "bob", "wrong-password").status_code == 429
    response = login(client, "bob", PASSWORD)
    assert response.status_code == 429
    assert b"temporarily locked" in response.content


def test_an_over_long_username_is_a_form_error_not_a_server_error(client):
    """Found by the fuzzer: 5,000 characters reached django-axes's 255-character record."""
    response = login(client, "x" * 5000, "whatever-password")
    assert response.status_code == 200
    assert b"at most 150 characters" in response.content


@pytest.mark.parametrize("weak", ["password", "12345678901234", "short1!"])
def test_weak_passwords_are_refused(weak):
    with pytest.raises(ValidationError):
        validate_password(weak)


def _session_row(client):
    return Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)


def _backdate(client, seconds):
    """As if the session's last renewal, and so its expiry, were `seconds` earlier."""
    row = _session_row(client)
    data = row.get_decoded()
    data[RENEWED_KEY] -= seconds
    row.session_data = SessionStore().encode(data)
    row.expire_date -= dt.timedelta(seconds=seconds)
    row.save()


def test_idle_sessions_expire_and_every_request_renews_them(client):
    make_user("cy")
    login(client, "cy", PASSWORD)
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert client.session.get_expiry_age() == 30 * 60
    home = reverse("home")
    assert client.get(home).status_code == 200

    # Within a minute of the last renewal a request writes nothing: the expiry stays.
    expiry = _session_row(client).expire_date
    with CaptureQueriesContext(connection) as queries:
        assert client.get(home).status_code == 200
    assert not [q for q in queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]
    assert _session_row(client).expire_date == expiry

    # A request after more than a minute renews it: the full idle timeout from now on.
    _backdate(client, 61)
    before = timezone.now()
    assert client.get(home).status_code == 200
    renewed = _session_row(client).expire_date
    assert before + dt.timedelta(seconds=30 * 60) <= renewed
    assert renewed <= timezone.now() + dt.timedelta(seconds=30 * 60)

    # Idle for the whole timeout: signed out.
    _backdate(client, 30 * 60)
    response = client.get(home)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_an_expired_session_cookie_does_not_become_a_new_session(client):
    make_user("cyd")
    login(client, "cyd", PASSWORD)
    client.get(reverse("home"))  # renewed: the session's expiry now counts from here
    _backdate(client, 31 * 60)
    client.get(reverse("login"))
    assert not Session.objects.filter(expire_date__gt=timezone.now()).exists()


def test_the_session_is_read_as_djangos_store_reads_it(client):
    """imrtrial.sessions reads the row by a statement written once: the same data as Django's
    own database store, nothing for an expired or unknown key (whose key it then drops, so the
    next save makes a new session, as Django's does), and a comparison on the expiry in SQL."""
    from imrtrial import sessions

    assert settings.SESSION_ENGINE == "imrtrial.sessions"
    make_user("cyra")
    login(client, "cyra", PASSWORD)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    ours = sessions.SessionStore(key)
    with CaptureQueriesContext(connection) as queries:
        assert ours.load() == SessionStore(key).load() != {}
    assert '"expire_date" > ' in queries[0]["sql"] and ours.session_key == key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now())
    expired = sessions.SessionStore(key)
    assert expired.load() == {} and expired.session_key is None
    unknown = sessions.SessionStore("x" * 32)
    assert unknown.load() == {} and unknown.session_key is None


def test_posts_without_a_csrf_token_are_refused():
    make_user("dee")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "dee", "password": PASSWORD})
    assert response.status_code == 403


def test_pages_carry_the_security_headers(client):
    response = client.get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_bootstrap_is_served_from_this_site_not_a_cdn(client):
    html = client.get(reverse("login")).content.decode()
    assert re.search(r'href="/static/vendor/bootstrap/bootstrap\.min\.\w+\.css"', html)
    assert "cdn" not in html.lower() and "https://" not in html


def test_passwords_are_hashed_with_argon2_in_production():
    from imrtrial import settings as production

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
