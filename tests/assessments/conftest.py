import pytest

from imrtrial.models import Participant, Role
from randomization import services as randomization
from tests.factories import grant, load_preset, make_ready_participant, make_user


@pytest.fixture
def danish(db):
    return load_preset("danish")


@pytest.fixture
def desk(danish):
    user = make_user("desk")
    grant(user, danish, Role.COORDINATOR)
    return user


@pytest.fixture
def assessor(danish):
    user = make_user("assessor")
    grant(user, danish, Role.ASSESSOR)
    return user


@pytest.fixture
def data_manager(danish):
    user = make_user("dm")
    grant(user, danish, Role.DATA_MANAGER)
    return user


@pytest.fixture
def randomized(danish, desk):
    """A randomized participant with the visits of the schedule."""
    from assessments.services import schedule_visits

    p = make_ready_participant(danish, desk)
    randomization.randomize(p, by=desk)
    schedule_visits(danish)
    return Participant.objects.get(pk=p.pk)


@pytest.fixture
def post_visit(randomized):
    return randomized.visits.get(timepoint__code="post")
