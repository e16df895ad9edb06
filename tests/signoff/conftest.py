import pytest

from assessments import services as crf
from imrtrial.models import Participant, Role
from randomization import services as randomization
from tests.factories import make_allocation, make_ready_participant

PASSWORD = "correct-horse-battery-staple"  # tests.factories.make_user's


@pytest.fixture
def study(danish):
    """Sign-off is tested on the Danish preset, like the forms it signs."""
    return danish


def entered(danish, desk, assessor, *, arm=None, site=None):
    """A randomized participant whose baseline GAF-F the assessor has completed."""
    p = make_ready_participant(danish, desk, site=site)
    if arm is None:
        randomization.randomize(p, by=desk)
    else:
        make_allocation(p, arm, by=desk)
    crf.schedule_visits(danish)
    p = Participant.objects.get(pk=p.pk)
    baseline = p.visits.get(timepoint__code="baseline")
    crf.save_entry(baseline, "gaf_f", {"gaf_f": "55"}, by=assessor, kind="single", complete=True)
    return p


@pytest.fixture
def participant(danish, coordinator, assessor):
    return entered(danish, coordinator, assessor)


@pytest.fixture
def baseline(participant):
    return participant.visits.get(timepoint__code="baseline")


@pytest.fixture
def investigator(person, participant):
    """The site investigator of the participant's site, with a full name to print."""
    return person(Role.INVESTIGATOR, participant.site, first_name="Inge", last_name="Vestergaard")
