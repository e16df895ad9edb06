import pytest
from django.db import connection

from imrtrial.models import Role

from . import factories


@pytest.fixture(autouse=True, scope="session")
def _tests_need_postgresql(django_db_setup, django_db_blocker):
    """Locking, constraints and transactions are tested for real: never on SQLite."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.exit(
                "The tests need PostgreSQL: run `make test`, or set DATABASE_URL to a PostgreSQL "
                "database.",
                returncode=2,
            )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is deliberately slow; the suite creates hundreds of users. The production
    hasher list is checked in tests/imrtrial/test_login_and_security.py."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _force_login_passes_two_factor(request, settings, monkeypatch):
    """Two-factor sign-in is on in the suite, as in production. `client.force_login(user)`
    stands for a complete sign-in, so it also gives the user a real TOTP device and marks the
    session verified by it exactly as django-otp's own login does; the middleware then runs
    unchanged on every request. Tests of two-factor itself (marked `two_factor`) get the plain
    force_login: a password-only session, which the middleware must stop."""
    settings.TWO_FACTOR_REQUIRED = True
    if request.node.get_closest_marker("two_factor"):
        return
    from django.test.client import ClientMixin
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    plain_force_login = ClientMixin.force_login

    def force_login(client, user, backend=None):
        plain_force_login(client, user, backend)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        device = device or factories.make_totp_device(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login)


@pytest.fixture
def trial(db):
    return factories.make_trial()


@pytest.fixture
def north(trial):
    return trial.sites.get(code="north")


@pytest.fixture
def south(trial):
    return trial.sites.get(code="south")


@pytest.fixture
def person(trial):
    """make a user holding `role` in the trial (at `site`, or at every site)."""

    def make(role, site=None, username=None):
        user = factories.make_user(username=username or f"{Role(role).value}-{site or 'all'}")
        factories.grant(user, trial, role, site)
        return user

    return make


@pytest.fixture
def coordinator(person):
    return person(Role.COORDINATOR)


@pytest.fixture
def assessor(person):
    return person(Role.ASSESSOR)


@pytest.fixture
def roles_restored(transactional_db):
    """Transactional tests end by emptying every table, groups included, and Django's
    serialized rollback does not bring back group permissions reliably. Tests that need the
    live server re-create the roles exactly as migration imrtrial 0002 does."""
    import importlib

    from django.apps import apps

    importlib.import_module("imrtrial.migrations.0002_roles").create_roles(apps, None)
