import datetime

import pytest

from fidelity import services
from imrtrial.models import Role
from tests.factories import grant, make_allocation, make_participant

D = datetime.date
START = D(2026, 1, 5)  # a Monday, well before the tests' "today" (the real date)
RANDOMIZED_ON = D(2025, 12, 1)


def randomized(trial, site, arm_code, *, randomized_on=RANDOMIZED_ON, pid=None):
    """A participant randomized to `arm_code`, written directly so the arm is known."""
    participant = make_participant(trial, site=site, **({"participant_id": pid} if pid else {}))
    make_allocation(participant, arm_code)
    participant.randomized_on = randomized_on
    participant.save(update_fields=["randomized_on"])
    return participant


def make_group(trial, site, facilitators, **overrides):
    fields = {
        "name": f"Group at {site.code}",
        "facilitators": facilitators,
        "start_date": START,
        "planned_sessions": 36,
        "capacity": 10,
        "schedule": "Mondays 10:00",
    }
    fields.update(overrides)
    return services.create_group(trial, site, by=facilitators[0], **fields)


def log(group, day, attendance, *, by, modules=("recovery_strategies",), **kw):
    return services.log_session(
        group,
        by=by,
        date=day,
        modules=list(modules),
        duration_minutes=kw.pop("duration_minutes", 60),
        facilitators_present=kw.pop("facilitators_present", [by]),
        attendance=attendance,
        **kw,
    )


def weekly(n, start=START):
    return [start + datetime.timedelta(weeks=i) for i in range(n)]


@pytest.fixture
def study(danish):
    """The fidelity tests are about the Danish preset: their people work in it."""
    return danish


@pytest.fixture
def site_a(danish):
    return danish.sites.get(code="frederiksberg")


@pytest.fixture
def site_b(danish):
    return danish.sites.get(code="ballerup")


@pytest.fixture
def facilitators(site_a, person):
    return [person(Role.FACILITATOR, site_a, f"fac{i}") for i in (1, 2)]


@pytest.fixture
def group(danish, site_a, facilitators):
    return make_group(danish, site_a, facilitators)


@pytest.fixture
def imr_member(danish, site_a, group, facilitators):
    participant = randomized(danish, site_a, "imr", pid="DK-IMR-1")
    services.add_member(group, participant, by=facilitators[0], joined_on=START)
    return participant


@pytest.fixture
def raters(danish, site_b, person):
    """Two fidelity raters for every site who work as facilitators at site B (the Danish
    cross-site design: a trained facilitator from the other CMHC rates)."""
    users = [person(Role.FIDELITY_RATER, None, f"rater{i}") for i in (1, 2)]
    for user in users:
        grant(user, danish, Role.FACILITATOR, site_b)
    return users
