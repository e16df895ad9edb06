"""Two randomized participants at North, one per arm, and the case manager of North."""

import datetime

import pytest
from django.utils import timezone

from imrtrial.models import Participant, Role
from tests.factories import make_allocation, make_ready_participant

RANDOMIZED_DAYS_AGO = 100


def _randomized(trial, desk, site, arm):
    p = make_ready_participant(trial, desk, site=site)
    make_allocation(p, arm, by=desk)
    randomized_on = timezone.localdate() - datetime.timedelta(days=RANDOMIZED_DAYS_AGO)
    Participant.objects.filter(pk=p.pk).update(randomized_on=randomized_on)
    return Participant.objects.get(pk=p.pk)


@pytest.fixture
def imr_participant(trial, coordinator, north):
    return _randomized(trial, coordinator, north, "imr")


@pytest.fixture
def tau_participant(trial, coordinator, north):
    return _randomized(trial, coordinator, north, "tau")


@pytest.fixture
def south_participant(trial, coordinator, south):
    return _randomized(trial, coordinator, south, "tau")


@pytest.fixture
def case_manager(person, north):
    return person(Role.CASE_MANAGER, north, first_name="Karen", last_name="Holm")


@pytest.fixture
def chief(person, north):
    """The site's chief clinician, who judges relatedness: a second case manager."""
    return person(Role.CASE_MANAGER, north, "chief-north", first_name="Ole", last_name="Berg")
