"""A Danish trial with one randomized participant of each arm, their post visits open, an
assessor and a coordinator: the setting of the self-report page tests (imported by them, so
that the package's conftest stays free for others)."""

import datetime
from types import SimpleNamespace

from django.utils import timezone

from assessments.models import Visit
from assessments.services import schedule_visits
from imrtrial.models import Participant, Role
from randomization import services as randomization
from randomization.models import IdentifyingDetails
from tests.factories import load_preset, make_person, make_ready_participant

PASSWORD = "correct-horse-battery-staple"
BIRTH_YEAR = 1975


def build(language="da", *, arms=2):
    """The trial and people; `arms` participants, randomized until one of each arm is there
    (the preset's blocks are permuted, so it may take a few), each with a post visit whose
    window is open today and contact details that allow links."""
    trial = load_preset("danish")
    coordinator = make_person(trial, Role.COORDINATOR, username="desk")
    assessor = make_person(trial, Role.ASSESSOR, username="rater", password=PASSWORD)
    by_arm = {}
    while len(by_arm) < arms:
        p = make_ready_participant(trial, coordinator)
        allocation = randomization.randomize(p, by=coordinator)
        by_arm.setdefault(allocation.arm.code, p)
    schedule_visits(trial)
    today = timezone.localdate()
    participants = [Participant.objects.get(pk=p.pk) for _, p in sorted(by_arm.items())]
    for p in participants:
        Visit.objects.filter(participant=p, timepoint__code="post").update(
            window_start=today - datetime.timedelta(days=3),
            target_date=today,
            window_end=today + datetime.timedelta(days=10),
        )
        IdentifyingDetails.objects.filter(screening__participant=p).update(
            email=f"{p.participant_id.lower()}@example.org",
            phone="+4520000000",
            birth_year=BIRTH_YEAR,
            agreed_to_links=True,
            language=language,
        )
    return SimpleNamespace(
        trial=trial,
        coordinator=coordinator,
        assessor=assessor,
        participants=participants,
        visits=[
            p.visits.select_related("timepoint").get(timepoint__code="post") for p in participants
        ],
    )


def answers(instrument):
    """A valid answer to every item of `instrument` (its lowest choice or bound)."""
    out = {}
    for item in instrument.items:
        if item.type == "choice":
            out[item.code] = str(item.choices[0][0])
        elif item.type in ("integer", "decimal"):
            out[item.code] = str(int(item.min if item.min is not None else 0))
        elif item.type == "boolean":
            out[item.code] = "no"
        elif item.type == "date":
            out[item.code] = timezone.localdate().isoformat()
        else:
            out[item.code] = "fine"
    return out
