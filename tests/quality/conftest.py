import datetime

import pytest

from assessments import services as crf
from imrtrial.models import Participant
from randomization import services as randomization
from tests.factories import make_ready_participant


@pytest.fixture
def study(danish):
    """The rules tests are about the Danish preset and its rules: their people work in it."""
    return danish


@pytest.fixture
def enrol(danish, coordinator):
    """make a randomized participant with the visits of the schedule."""

    def make(site=None):
        p = make_ready_participant(danish, coordinator, site=site)
        randomization.randomize(p, by=coordinator)
        crf.schedule_visits(danish)
        return Participant.objects.get(pk=p.pk)

    return make


@pytest.fixture
def randomized(enrol):
    return enrol()


@pytest.fixture
def save(assessor):
    """save(participant, timepoint, instrument, {item: text}, reason=...) through the service."""

    def write(participant, timepoint, instrument, values, reason="", by=None):
        visit = participant.visits.get(timepoint__code=timepoint)
        return crf.save_entry(
            visit,
            instrument,
            {k: str(v) for k, v in values.items()},
            by=by or assessor,
            kind="single",
            complete=True,
            reason=reason,
        )

    return write


def panss(**overrides):
    values = {
        **{f"p{i}": 2 for i in range(1, 8)},
        **{f"n{i}": 2 for i in range(1, 8)},
        **{f"g{i}": 2 for i in range(1, 17)},
    }
    values.update(overrides)
    return values


DAY = datetime.timedelta(days=1)
