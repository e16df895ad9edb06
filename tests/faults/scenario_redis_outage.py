"""Scenario (run by test_faults.py): Redis is down when the daily reminders are due.

Beat cannot queue the jobs and says so; nothing is lost, because what is due is decided from
PostgreSQL and the outbox lives there too. The job is run all the same without the broker (the
send_reminders command), while the mail relay also refuses one address; what could not be
sent stays pending. Redis comes back, a real Celery worker runs the jobs again -- twice over,
as after a second beat or a redelivered message -- and each digest has gone out exactly once.
"""

import datetime
import os
import smtplib
import threading
import time
from collections import Counter

import pytest
from celery.signals import task_postrun
from django.core import mail
from django.core.mail.backends import locmem
from django.core.management import call_command
from django.utils import timezone
from kombu.exceptions import OperationalError

from assessments import tasks as visit_tasks
from assessments.models import Reminder
from assessments.services import schedule_visits
from fidelity import services as fidelity
from fidelity import tasks as attendance_tasks
from fidelity.models import AttendanceReminder
from imrtrial import celery_app
from imrtrial.models import Role
from tests.factories import grant, load_preset, make_ready_participant, make_user

from .services import PrivateRedis

if "FAULTS_REDIS_PORT" not in os.environ:
    pytest.skip("run through tests/faults/test_faults.py", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class RelayBackend(locmem.EmailBackend):
    """Django's in-memory outbox behind a relay that refuses the addresses in `refused`, and
    that, when `hold` is an event, keeps the first sender waiting (saying so by `held`) until
    the event is set."""

    refused = set()
    hold = None
    held = threading.Event()

    def send_messages(self, messages):
        hold, RelayBackend.hold = RelayBackend.hold, None
        if hold is not None:
            RelayBackend.held.set()
            assert hold.wait(60), "nobody let the relay go on"
        for message in messages:
            if set(message.to) & self.refused:
                raise smtplib.SMTPServerDisconnected("relay unavailable")
        return super().send_messages(messages)


@pytest.fixture
def private_broker(settings):
    """Celery on the private Redis: tasks are queued there, not run eagerly."""
    redis = PrivateRedis.from_env()
    import redis as redis_client

    redis_client.Redis.from_url(redis.url).flushdb()
    keys = ("broker_url", "task_always_eager", "result_backend")
    saved = {k: celery_app.conf[k] for k in keys}
    celery_app.close()
    celery_app.conf.update(
        broker_url=redis.url,
        task_always_eager=False,
        result_backend=None,
        broker_connection_retry_on_startup=True,
    )
    yield redis
    celery_app.close()
    celery_app.conf.update(saved)
    if not redis.ping():
        redis.start()


@pytest.fixture
def task_runs():
    """Names of the tasks the worker has finished, in order."""
    runs = []
    lock = threading.Lock()

    def finished(sender=None, **kwargs):
        with lock:
            runs.append(sender.name)

    task_postrun.connect(finished, weak=False)
    yield runs
    task_postrun.disconnect(finished)


def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def reminders_due(key):
    """A trial where three assessors (one per centre) have a baseline visit due today and two
    facilitators have three unlogged weekly sessions: five digests due. Returns their e-mail
    addresses, assessors first."""
    today = timezone.localdate()
    trial = load_preset("danish", key=key)
    desk = make_user("desk-redis")  # no e-mail address: coordinators get no digest here
    grant(desk, trial, Role.COORDINATOR)
    sites = list(trial.sites.order_by("code"))
    assessors = []
    for site in sites:
        user = make_user(f"assessor-{site.code}", email=f"assessor-{site.code}@example.org")
        grant(user, trial, Role.ASSESSOR, site)
        assessors.append(user)
        make_ready_participant(trial, desk, site=site, baseline=False)  # baseline visit due
    schedule_visits(trial)
    facilitators = []
    for n in (1, 2):
        user = make_user(f"facilitator-{n}", email=f"facilitator-{n}@example.org")
        grant(user, trial, Role.FACILITATOR, sites[0])
        facilitators.append(user)
    fidelity.create_group(
        trial,
        sites[0],
        by=facilitators[0],
        name="Tuesday group",
        facilitators=facilitators,
        start_date=today - datetime.timedelta(weeks=3),
        planned_sessions=12,
        capacity=10,
    )  # three weekly sessions, none logged
    return [u.email for u in assessors + facilitators]


def test_redis_down_when_reminders_are_due_loses_nothing_and_repeats_nothing(
    roles_restored, private_broker, task_runs, settings
):
    from celery.contrib.testing.worker import start_worker

    settings.EMAIL_BACKEND = f"{__name__}.RelayBackend"
    due = reminders_due("faults-redis")
    expected = set(due)

    # Beat's hour, Redis down: queueing the jobs fails loudly; nothing has been written or sent.
    private_broker.stop()
    for task in (visit_tasks.daily_reminders, attendance_tasks.daily_attendance_reminders):
        with pytest.raises(OperationalError):
            task.delay()
    assert not Reminder.objects.exists() and not AttendanceReminder.objects.exists()
    assert mail.outbox == []

    # The job runs without the broker; the relay refuses one assessor's digest meanwhile.
    refused = due[0]
    RelayBackend.refused = {refused}
    call_command("send_reminders")
    assert {m.to[0] for m in mail.outbox} == expected - {refused}
    pending = Reminder.objects.filter(sent_at__isnull=True)
    assert set(pending.values_list("recipient__email", flat=True)) == {refused}
    assert all(r.attempts == 1 and "relay" in r.last_error for r in pending)
    # Nothing lost: every recipient due a digest has lines, sent or pending.
    lined = set(Reminder.objects.values_list("recipient__email", flat=True)) | set(
        AttendanceReminder.objects.values_list("recipient__email", flat=True)
    )
    assert lined == expected
    assert not AttendanceReminder.objects.filter(sent_at__isnull=True).exists()

    # Redis and the relay are back. A real worker runs the daily jobs twice over and the
    # hourly sender once: the pending digest goes out, and nothing goes out twice.
    RelayBackend.refused = set()
    private_broker.start()
    celery_app.close()  # forget connections made while the broker was down
    jobs = [
        visit_tasks.daily_reminders,
        attendance_tasks.daily_attendance_reminders,
        visit_tasks.send_pending_reminders,
        visit_tasks.daily_reminders,
        attendance_tasks.daily_attendance_reminders,
    ]
    with start_worker(celery_app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        for task in jobs:
            task.delay()
        assert wait_for(lambda: len(task_runs) == len(jobs)), task_runs
    assert sorted(task_runs) == sorted(t.name for t in jobs)

    digests = Counter((m.to[0], m.subject) for m in mail.outbox)
    assert {to for to, _ in digests} == expected
    assert [d for d, n in digests.items() if n > 1] == []
    assert len(mail.outbox) == len(expected)  # one digest per recipient for the day
    assert not Reminder.objects.filter(sent_at__isnull=True).exists()
    assert not AttendanceReminder.objects.filter(sent_at__isnull=True).exists()
    print(
        f"\n{len(expected)} digests due; Redis down: queueing refused, "
        f"{len(expected) - 1} sent by the command, 1 kept pending; Redis back: "
        f"{len(jobs)} task runs sent the pending one; every digest exactly once"
    )


def test_redis_lost_while_the_worker_runs_the_job_repeats_nothing(
    roles_restored, private_broker, task_runs, settings
):
    """The worker has taken the daily job and is sending when Redis goes away: the job ends,
    but its acknowledgement (acks_late) cannot reach the broker. Back up, Redis still holds the
    message (append-only file, as in docker-compose.yml) and gives it out again once its
    visibility timeout has passed: the job runs a second time and sends nothing twice."""
    from celery.contrib.testing.worker import start_worker

    settings.EMAIL_BACKEND = f"{__name__}.RelayBackend"
    assessors = set(reminders_due("faults-redis-mid-job")[:3])
    # Given back 5 s after delivery (production: kombu's hour), looked for at every idle poll.
    celery_app.conf.broker_transport_options = {
        "visibility_timeout": 5,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    RelayBackend.refused = set()
    RelayBackend.held.clear()
    RelayBackend.hold = release = threading.Event()
    try:
        with start_worker(celery_app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
            visit_tasks.daily_reminders.delay()
            assert RelayBackend.held.wait(60), "the worker never started sending"
            private_broker.stop()
            release.set()
            assert wait_for(lambda: len(task_runs) == 1), "the job did not finish"
            assert {m.to[0] for m in mail.outbox} == assessors
            private_broker.start()
            back = time.monotonic()
            assert wait_for(lambda: len(task_runs) == 2, 120), "the message never came back"
            again = time.monotonic() - back
    finally:
        celery_app.conf.broker_transport_options = {}
        RelayBackend.hold = None
    assert task_runs == [visit_tasks.daily_reminders.name] * 2
    digests = Counter((m.to[0], m.subject) for m in mail.outbox)
    assert {to for to, _ in digests} == assessors
    assert [d for d, n in digests.items() if n > 1] == []
    assert not Reminder.objects.filter(sent_at__isnull=True).exists()
    print(
        f"\nRedis lost mid-job: the job finished and sent {len(assessors)} digests; the "
        f"unacknowledged message ran again {again:.1f} s after Redis was back; no digest twice"
    )
