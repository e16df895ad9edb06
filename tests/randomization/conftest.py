import pytest

from imrtrial.models import Role
from imrtrial.trialconfig import create_trial, parse, resolve
from tests.factories import grant, make_user


def load_preset(name, **overrides):
    config = parse(resolve(name).read_text())
    config.update(overrides)
    trial = create_trial(config)
    trial.status = "open"
    trial.save(update_fields=["status"])
    return trial


@pytest.fixture
def danish(db):
    return load_preset("danish")


@pytest.fixture
def dutch(db):
    return load_preset("dutch")


@pytest.fixture
def desk_user(db):
    """A coordinator at every site of every trial made by the test (grant after creating)."""
    return make_user("desk")


def coordinator_of(trial, user):
    grant(user, trial, Role.COORDINATOR)
    return user
