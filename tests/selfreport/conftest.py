"""A trial whose baseline visit has self-report forms, a participant of each arm whom links may
reach, and the assessor who sends the links; text messages kept in memory."""

import datetime
from dataclasses import dataclass

import pytest
from django.utils import timezone

from assessments.models import Visit
from assessments.services import schedule_visits
from imrtrial.models import Role, Timepoint
from randomization.models import IdentifyingDetails
from selfreport import sms
from tests.factories import make_allocation, make_person, make_ready_participant, make_trial

# The self-report forms of the visit, and a form the assessor rates (never in a link).
SELF_REPORT = ["csq8", "mhrm"]


@dataclass
class Scene:
    trial: object
    assessor: object
    imr: object  # a participant of the IMR arm
    tau: object  # a participant of the control arm

    def visit(self, participant):
        return participant.visits.select_related("timepoint", "participant__trial").get(
            timepoint__code="baseline"
        )

    def details(self, participant):
        return IdentifyingDetails.objects.get(screening__participant=participant)


def build_scene(key=None):
    trial = make_trial(**({"key": key} if key else {}))
    Timepoint.objects.create(
        trial=trial,
        code="baseline",
        label="Baseline",
        order=0,
        anchor=Timepoint.Anchor.ENROLMENT,
        window_before_days=0,
        window_after_days=400,
        instruments=["gaf_f", *SELF_REPORT],
    )
    desk = make_person(trial, Role.COORDINATOR, username=f"desk-{trial.key}")
    assessor = make_person(trial, Role.ASSESSOR, username=f"assessor-{trial.key}")
    people = {}
    for arm, phone, email in (
        ("imr", "+4511111111", "ada@example.org"),
        ("tau", "+4522222222", "bo@example.org"),
    ):
        participant = make_ready_participant(trial, desk)
        make_allocation(participant, arm, by=desk)
        IdentifyingDetails.objects.filter(screening__participant=participant).update(
            email=email, phone=phone, birth_year=1980, agreed_to_links=True, language="en"
        )
        people[arm] = participant
    schedule_visits(trial)
    # Both visits' windows end on the same day, a month ahead (a plain update writes no row).
    last_day = timezone.localdate() + datetime.timedelta(days=30)
    Visit.objects.filter(participant__trial=trial).update(window_end=last_day)
    return Scene(trial, assessor, people["imr"], people["tau"])


@pytest.fixture
def scene(db):
    return build_scene()


@pytest.fixture(autouse=True)
def _text_messages_in_memory(settings):
    settings.SMS_BACKEND = "selfreport.sms.LocmemSender"
    settings.SITE_URL = "https://trial.example.org"
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def at(days, hour, minute=0):
    """The site's local time `days` from today at `hour`: a moment to run the sender at."""
    day = timezone.localdate() + datetime.timedelta(days=days)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))
