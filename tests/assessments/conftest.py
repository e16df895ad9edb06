import pytest

from imrtrial.models import Participant
from randomization import services as randomization
from tests.factories import make_ready_participant


@pytest.fixture
def study(danish):
    """The assessment tests are about the Danish preset: their people work in it."""
    return danish


@pytest.fixture
def randomized(danish, coordinator):
    """A randomized participant with the visits of the schedule."""
    from assessments.services import schedule_visits

    p = make_ready_participant(danish, coordinator)
    randomization.randomize(p, by=coordinator)
    schedule_visits(danish)
    return Participant.objects.get(pk=p.pk)


@pytest.fixture
def post_visit(randomized):
    return randomized.visits.get(timepoint__code="post")
