"""A real Celery worker, on the local Redis, runs the reminder jobs; and a broker outage loses
nothing."""

import os
import time

import pytest
from django.core import mail
from kombu.exceptions import OperationalError

from assessments import reminders, tasks
from assessments.models import Reminder
from assessments.services import schedule_visits
from imrtrial import celery_app
from imrtrial.models import Role
from tests.factories import grant, load_preset, make_ready_participant, make_user

REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Run in a pytest process of their own (see the Makefile): after an eager task has run in the
# same process, the in-thread worker consumes nothing. Not understood yet; see the issue note.
pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def redis_broker():
    """Point the app at the local Redis (the suite otherwise runs tasks eagerly)."""
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    keys = ("broker_url", "task_always_eager", "result_backend")
    saved = {k: celery_app.conf[k] for k in keys}
    # An eager task earlier in the session may have made the producer pool for the default
    # broker (RabbitMQ answers on this machine, so messages would vanish there): start afresh.
    celery_app.close()
    celery_app.conf.update(
        broker_url=REDIS,
        task_always_eager=False,
        result_backend=None,
        broker_connection_retry_on_startup=True,
    )
    yield REDIS
    celery_app.close()
    celery_app.conf.update(saved)
    redis.Redis.from_url(REDIS).flushdb()


@pytest.fixture
def due_visit(roles_restored):
    trial = load_preset("danish", key="danish-worker")
    desk = make_user("desk-w")
    grant(desk, trial, Role.COORDINATOR)
    grant(make_user("assessor-w", email="assessor@example.org"), trial, Role.ASSESSOR)
    participant = make_ready_participant(trial, desk, baseline=False)
    schedule_visits(trial)
    return participant.visits.get(timepoint__code="baseline")


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_a_real_worker_sends_the_daily_digest_through_redis(redis_broker, due_visit):
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        tasks.daily_reminders.delay()
        assert wait_for(lambda: len(mail.outbox) == 1), "the worker sent nothing"
    assert mail.outbox[0].to == ["assessor@example.org"]
    assert due_visit.participant.participant_id in mail.outbox[0].body
    assert Reminder.objects.get().sent_at is not None


def test_a_broker_outage_delays_but_loses_nothing(redis_broker, due_visit):
    from celery.contrib.testing.worker import start_worker

    reminders.queue_reminders(due_visit.window_start)
    # Redis is down when the send is queued: the task is lost, the outbox rows are not.
    with (
        celery_app.connection_for_write("redis://127.0.0.1:1/0") as dead,
        pytest.raises(OperationalError),
    ):
        tasks.send_pending_reminders.apply_async(connection=dead, retry=False)
    assert Reminder.objects.filter(sent_at__isnull=True).count() == 1
    # Redis is back: the next run (beat sends one every hour) delivers them.
    with start_worker(celery_app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        tasks.send_pending_reminders.delay()
        assert wait_for(lambda: len(mail.outbox) == 1)
    assert not Reminder.objects.filter(sent_at__isnull=True).exists()
