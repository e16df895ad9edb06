"""Every e-mail the project sends passes one send-time check, imrtrial.outbox.refusal: when it
refuses, nothing of any kind is sent, and outbox lines are kept, marked as dropped."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from assessments import reminders as visit_reminders
from assessments.models import Reminder
from assessments.services import schedule_visits
from fidelity import reminders as attendance_reminders
from fidelity import services as fidelity
from fidelity.models import AttendanceReminder
from imrtrial import outbox
from imrtrial.models import Role
from randomization import services as randomization
from tests.factories import make_person, make_ready_participant

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(danish):
    """A trial with one randomized participant, its visits, a group, and staff with e-mail."""
    trial = danish
    site = trial.sites.order_by("code").first()
    staff = {}
    for role in (Role.COORDINATOR, Role.ASSESSOR, Role.DATA_MANAGER, Role.FACILITATOR):
        staff[role] = make_person(trial, role, site, f"{role}-mail", email=f"{role}@example.org")
    co = make_person(trial, Role.FACILITATOR, site, "co-fac", email="co-fac@example.org")
    participant = make_ready_participant(trial, staff[Role.COORDINATOR], site=site)
    group = fidelity.create_group(
        trial,
        site,
        by=co,
        name="Group",
        facilitators=[staff[Role.FACILITATOR], co],
        start_date=timezone.localdate() - datetime.timedelta(weeks=2),
        planned_sessions=12,
        capacity=8,
    )
    return trial, staff, participant, group


def queue_everything(world, capture):
    """Randomize (the notice held until commit), queue both kinds of reminder; return a function
    that sends all of it."""
    trial, staff, participant, group = world
    with capture(execute=False) as notices:
        randomization.randomize(participant, by=staff[Role.COORDINATOR])
    schedule_visits(trial)
    visit = participant.visits.get(timepoint__code="post")
    assert visit_reminders.queue_reminders(visit.window_start) > 0
    assert attendance_reminders.queue_attendance_reminders(timezone.localdate()) > 0

    def send():
        for notice in notices:
            notice()
        visit_reminders.send_pending()
        attendance_reminders.send_pending()

    return send


def test_with_the_check_saying_yes_each_kind_of_mail_is_sent(
    world, django_capture_on_commit_callbacks
):
    queue_everything(world, django_capture_on_commit_callbacks)()
    subjects = " / ".join(m.subject for m in mail.outbox)
    for kind in ("] Randomization ", "Follow-up visits to see to", "IMR sessions to log"):
        assert kind in subjects


def test_with_the_check_refusing_everyone_at_send_time_nothing_at_all_is_sent(
    world, django_capture_on_commit_callbacks, monkeypatch
):
    send = queue_everything(world, django_capture_on_commit_callbacks)
    asked = []

    def refuse(user, trial, site, rule):
        asked.append(rule)
        return "Refused by the test."

    monkeypatch.setattr(outbox, "refusal", refuse)
    send()
    assert mail.outbox == []
    assert {rule.reveals_allocation for rule in asked} == {True, False}
    for model in (Reminder, AttendanceReminder):
        lines = model.objects.all()
        assert lines.exists()
        assert all(
            line.sent_at is None and line.dropped_at and line.last_error == "Refused by the test."
            for line in lines
        )
