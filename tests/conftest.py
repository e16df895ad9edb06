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
