"""Fixtures of the whole suite: the trials and the people in them, each defined here only.

Trials
    trial     factories.make_trial(): arms imr and tau, sites `north` and `south`
    danish    the shipped Danish preset (factories.load_preset("danish")), open
    dutch     the shipped Dutch preset, open

People (personas, one name per role, as healthchecks' Alice, Bob and Charlie)
    coordinator, assessor, data_manager, facilitator, statistician, key_holder, trial_admin
each holds that role at every site of `study`, the trial the tests are about. `study` is
`trial`; a package whose tests are about a preset says so once, in its conftest
(`def study(danish): return danish`: randomization, assessments, fidelity, exports), and a
module may do the same (fidelity/test_blinding: `trial`; exports/test_odm: the Danish preset
renamed). So `assessor` in tests/assessments is the Danish trial's assessor, and in
tests/imrtrial the generic trial's. No other fixture of this file is overridden anywhere.
Anyone else (a second user of a role, one site only, an e-mail address) is
`person(role, site=None, username=None, **fields)`, in `study` too; for a trial that is not
`study`, factories.make_person(trial, role, ...). Usernames are `<role>-<site code>` or
`<role>-all` unless given (so a second person of a persona's role and site needs a username).
Scenario fixtures that only one package uses (the security `world`, the exports `filled_trial`,
the fidelity `group`) live in that package's conftest, built from these fixtures and
tests/factories.py."""

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import translation

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
def _each_test_starts_in_the_default_language():
    """A request leaves its language active in the thread (LocaleMiddleware sets it on every
    request, so the site never relies on what came before). A test that asked for a Danish page
    must not make the next test's service messages Danish."""
    translation.activate(django_settings.LANGUAGE_CODE)
    yield
    translation.activate(django_settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _each_test_starts_with_an_empty_cache():
    """The cache counts per address (the participant links' guesses, the API's rates): every
    test's requests come from 127.0.0.1, so one test's count must not refuse the next's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


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


# --- Trials -----------------------------------------------------------------------------------


@pytest.fixture
def trial(db):
    return factories.make_trial()


@pytest.fixture
def danish(db):
    return factories.load_preset("danish")


@pytest.fixture
def dutch(db):
    return factories.load_preset("dutch")


@pytest.fixture
def north(trial):
    return trial.sites.get(code="north")


@pytest.fixture
def south(trial):
    return trial.sites.get(code="south")


# --- People ------------------------------------------------------------------------------------


@pytest.fixture
def study(trial):
    """The trial the personas hold their roles in. Packages and modules whose tests are about
    another trial override this fixture, and only this one."""
    return trial


@pytest.fixture
def person(study):
    """make a user holding `role` in `study` (at `site`, or at every site)."""

    def make(role, site=None, username=None, **fields):
        return factories.make_person(study, role, site, username, **fields)

    return make


@pytest.fixture
def coordinator(person):
    return person(Role.COORDINATOR)


@pytest.fixture
def assessor(person):
    return person(Role.ASSESSOR)


@pytest.fixture
def data_manager(person):
    return person(Role.DATA_MANAGER)


@pytest.fixture
def facilitator(person):
    return person(Role.FACILITATOR)


@pytest.fixture
def statistician(person):
    return person(Role.STATISTICIAN)


@pytest.fixture
def key_holder(person):
    return person(Role.KEY_HOLDER)


@pytest.fixture
def trial_admin(person):
    return person(Role.TRIAL_ADMIN)


# --- Live-server tests -------------------------------------------------------------------------


@pytest.fixture
def roles_restored(transactional_db):
    """Transactional tests end by emptying every table, groups included, and Django's
    serialized rollback does not bring back group permissions reliably. Tests that need the
    live server re-create the roles exactly as the migrations that make them do (0002, 0013
    for the monitor and the site investigator, 0014 for the case manager)."""
    import importlib

    from django.apps import apps

    for migration in ("0002_roles", "0013_monitor_and_investigator_roles"):
        importlib.import_module(f"imrtrial.migrations.{migration}").create_roles(apps, None)
    # The case manager (0014), whom the safety event log of the crawler's world needs.
    importlib.import_module("imrtrial.migrations.0014_case_manager").create_role(apps, None)
