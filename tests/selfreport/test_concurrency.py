"""Two senders at once, on two connections: SKIP LOCKED gives each message to one of them.
And without a broker (make run), a link goes as soon as it is committed."""

import smtplib
import threading

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.db import connection

from selfreport import messaging, services
from selfreport.models import Message

from .conftest import at, build_scene

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

DAYTIME = at(1, 10)


class HoldingBackend(locmem.EmailBackend):
    """A mail server that keeps the first sender waiting (saying so by `held`) until `hold` is
    set, as a slow server would; and refuses everything while `refuse` is true."""

    hold = None
    held = threading.Event()
    refuse = False

    def send_messages(self, messages):
        hold, HoldingBackend.hold = HoldingBackend.hold, None
        if hold is not None:
            HoldingBackend.held.set()
            assert hold.wait(30), "nobody let the mail server go on"
        if HoldingBackend.refuse:
            raise smtplib.SMTPServerDisconnected("mail server unavailable")
        return super().send_messages(messages)


@pytest.fixture
def holding(settings):
    settings.EMAIL_BACKEND = f"{__name__}.HoldingBackend"
    HoldingBackend.held.clear()
    yield HoldingBackend
    HoldingBackend.hold, HoldingBackend.refuse = None, False


def in_thread(results, name, now):
    def run():
        try:
            results[name] = messaging.send_pending(now)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_senders_at_once_send_a_message_once(roles_restored, holding, settings):
    settings.SELF_REPORT_QUIET_HOURS = "0-0"
    scene = build_scene()
    released = threading.Event()
    holding.refuse = True  # the send on commit (no broker) fails and leaves the row pending
    link, _ = services.send_link(scene.visit(scene.imr), "email", by=scene.assessor)
    holding.refuse = False
    holding.hold = released
    results = {}
    first = in_thread(results, "first", DAYTIME)
    assert holding.held.wait(30), "the first sender never reached the mail server"
    # The first sender holds the row while the mail server has the message: the second skips it.
    second = in_thread(results, "second", DAYTIME)
    second.join(30)
    assert results.get("second") == (0, 0, 0)
    released.set()
    first.join(30)
    assert results["first"] == (1, 0, 0)
    assert len(mail.outbox) == 1
    message = Message.objects.get(link=link)
    assert message.sent_at is not None
    assert message.attempts == 1  # the failed send on commit


def test_without_a_broker_a_link_goes_when_it_is_committed(roles_restored, settings):
    settings.SELF_REPORT_QUIET_HOURS = "0-0"
    scene = build_scene()
    link, token = services.send_link(scene.visit(scene.tau), "email", by=scene.assessor)
    assert [m.to for m in mail.outbox] == [["bo@example.org"]]
    assert token in mail.outbox[0].body
    assert Message.objects.get(link=link).sent_at is not None


def test_a_failed_send_on_commit_leaves_the_link_standing(roles_restored, holding, settings):
    settings.SELF_REPORT_QUIET_HOURS = "0-0"
    scene = build_scene()
    holding.refuse = True
    link, _ = services.send_link(scene.visit(scene.tau), "email", by=scene.assessor)
    assert link.pk is not None
    message = Message.objects.get(link=link)
    assert (message.sent_at, message.attempts) == (None, 1)
    holding.refuse = False
    assert messaging.send_pending(DAYTIME) == (1, 0, 0)
    assert len(mail.outbox) == 1
