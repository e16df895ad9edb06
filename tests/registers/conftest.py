import pytest

from imrtrial.models import Participant
from registers.config import add_dataset
from tests.factories import make_allocation, make_ready_participant


@pytest.fixture
def hospital(trial):
    """The Dutch hospitalisation dataset (keyed by participant id) in the generic trial."""
    return add_dataset(trial, "nl_hospitalisation")


@pytest.fixture
def service_use(trial):
    """The Danish one-year service use dataset (keyed by the CPR number)."""
    return add_dataset(trial, "dk_service_use")


@pytest.fixture
def randomized(trial, coordinator):
    """make(arm, site=None, **screening) a randomized participant (baseline on 2026-11-02,
    randomized the same day)."""

    def make(arm="imr", site=None, **screen_kw):
        p = make_ready_participant(trial, coordinator, site=site, **screen_kw)
        make_allocation(p, arm, by=coordinator)
        Participant.objects.filter(pk=p.pk).update(randomized_on=p.baseline_completed_on)
        return Participant.objects.get(pk=p.pk)

    return make
