"""A real Celery worker on the local Redis sends the participants' messages; a broker outage
when a link is sent delays its message and loses nothing, and it goes exactly once."""

import logging
import os
import threading
import time

import pytest
from celery.signals import task_postrun
from django.core import mail

from imrtrial import celery_app
from selfreport import services, tasks
from selfreport.models import Link, Message

from .conftest import build_scene

REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1
# In a pytest process of their own, as tests/assessments/test_reminder_worker.py says why.
pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def point_at(url):
    """Queue tasks at `url` from now on. app.close() forgets the connection pool but not the
    producer pool made from it (Celery 5.7), which would go on publishing to the broker it was
    made for: dropped too, or "Redis is down" would still reach the live Redis."""
    celery_app.close()
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url


@pytest.fixture
def redis_broker(settings):
    """Celery on the local Redis (the suite otherwise runs tasks eagerly); no quiet hours, so
    the worker's run, at whatever time the test runs, sends."""
    import redis

    settings.SELF_REPORT_QUIET_HOURS = "0-0"
    redis.Redis.from_url(REDIS).flushdb()
    keys = ("broker_url", "task_always_eager", "result_backend")
    saved = {k: celery_app.conf[k] for k in keys}
    point_at(REDIS)
    celery_app.conf.update(
        task_always_eager=False, result_backend=None, broker_connection_retry_on_startup=True
    )
    yield REDIS
    point_at(saved.pop("broker_url"))
    celery_app.conf.update(saved)
    redis.Redis.from_url(REDIS).flushdb()


@pytest.fixture
def finished_runs():
    """How many times the worker finished the send task."""
    runs = []
    lock = threading.Lock()

    def finished(sender=None, **kwargs):
        if sender.name == tasks.send_participant_messages.name:
            with lock:
                runs.append(sender.name)

    task_postrun.connect(finished, weak=False)
    yield runs
    task_postrun.disconnect(finished)


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def worker():
    from celery.contrib.testing.worker import start_worker

    return start_worker(celery_app, perform_ping_check=False, pool="solo", shutdown_timeout=10)


def test_a_link_sent_with_the_broker_up_goes_through_the_worker(
    roles_restored, redis_broker, finished_runs
):
    scene = build_scene()
    with worker():
        link, token = services.send_link(scene.visit(scene.imr), "email", by=scene.assessor)
        assert wait_for(lambda: len(mail.outbox) == 1), "the worker sent nothing"
    assert token in mail.outbox[0].body
    assert Message.objects.get(link=link).sent_at is not None


def test_a_redis_outage_delays_the_link_and_it_goes_exactly_once(
    roles_restored, redis_broker, finished_runs, caplog
):
    # An in-process worker earlier in the session may have set the root logger to ERROR.
    caplog.set_level(logging.WARNING, logger="selfreport.messaging")
    scene = build_scene()
    point_at(DEAD_BROKER)
    started = time.monotonic()
    link, token = services.send_link(scene.visit(scene.imr), "email", by=scene.assessor)
    assert time.monotonic() - started < 10, "the link waited for the broker"
    # The link stands, its message waits in the outbox, and the failure to queue was logged.
    assert Link.objects.filter(pk=link.pk, revoked_at__isnull=True).exists()
    message = Message.objects.get(link=link)
    assert (message.sent_at, message.dropped_at) == (None, None)
    assert "not queued" in caplog.text
    assert mail.outbox == []
    # Redis is back: the beat sweep queues the task; it arrives twice (a second minute's sweep,
    # or a redelivered message), and the message goes once.
    point_at(REDIS)
    with worker():
        tasks.send_participant_messages.delay()
        tasks.send_participant_messages.delay()
        assert wait_for(lambda: len(finished_runs) == 2), "the worker did not run both"
    assert len(mail.outbox) == 1
    assert token in mail.outbox[0].body
    assert Message.objects.get(link=link).sent_at is not None
