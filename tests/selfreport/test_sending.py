"""The participants' outbox (selfreport.messaging): each message goes once, at a decent hour,
only while the participant, the link, its forms and its sender still allow it."""

import datetime
import logging
import smtplib

import pytest
from django.core import mail
from django.core.mail.backends import locmem

from assessments.models import FormEntry
from imrtrial.models import Membership, Participant
from randomization.models import IdentifyingDetails
from selfreport import messaging, services, sms
from selfreport.models import Link, Message

from .conftest import SELF_REPORT, at

DAYTIME = at(1, 10)


class RefusingBackend(locmem.EmailBackend):
    """A mail server that refuses every message to the addresses in `refused`."""

    refused = set()

    def send_messages(self, messages):
        for message in messages:
            if set(message.to) & self.refused:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"refused")})
        return super().send_messages(messages)


class DownSender:
    """A text message provider that is down."""

    def send(self, to, text):
        raise ConnectionError(f"provider unreachable, nothing sent to {to}")


@pytest.fixture
def refusing(settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    RefusingBackend.refused = {"ada@example.org"}
    yield RefusingBackend
    RefusingBackend.refused = set()


def link_to(scene, participant, channel="email"):
    link, token = services.send_link(scene.visit(participant), channel, by=scene.assessor)
    return link, token


def message_of(link, number=0):
    kind = Message.Kind.LINK if number == 0 else Message.Kind.REMINDER
    return Message.objects.get(link=link, kind=kind, number=number)


def complete_forms(scene, participant):
    """The participant answered every self-report form of the visit (rows as save_entry writes
    them: what is tested here is only that none is open any more)."""
    visit = scene.visit(participant)
    for code in SELF_REPORT:
        FormEntry.objects.create(
            participant=participant,
            visit=visit,
            instrument=code,
            timepoint="baseline",
            entered_by=scene.assessor,
            entered_via=FormEntry.EnteredVia.LINK,
            status=FormEntry.Status.COMPLETE,
        )


def test_a_link_is_sent_once_with_its_link_last_day_and_opt_out(scene):
    link, token = link_to(scene, scene.imr)
    assert messaging.send_pending(DAYTIME) == (1, 0, 0)
    assert messaging.send_pending(DAYTIME) == (0, 0, 0)
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["ada@example.org"]
    assert f"https://trial.example.org/r/{token}/\n" in email.body
    assert f"https://trial.example.org/r/{token}/stop/" in email.body
    last_day = scene.visit(scene.imr).window_end
    assert f"The link works until {last_day.isoformat()}." in email.body
    assert email.subject == "Your questionnaires from your research visit"
    assert message_of(link).sent_at == DAYTIME


def test_a_text_message_is_short_and_goes_to_the_phone(scene):
    link, token = link_to(scene, scene.tau, "sms")
    assert messaging.send_pending(DAYTIME) == (1, 0, 0)
    [(to, text)] = sms.outbox
    assert to == "+4522222222"
    assert f"https://trial.example.org/r/{token}/ " in text
    assert text.endswith("The research team")
    assert len(text) < 300
    assert mail.outbox == []


def test_the_message_is_in_the_participants_language(scene):
    IdentifyingDetails.objects.filter(screening__participant=scene.imr).update(language="da")
    link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    # Danish dates, whatever the catalogue holds for the words: 30.11.2026, not 2026-11-30.
    assert scene.visit(scene.imr).window_end.strftime("%d.%m.%Y") in mail.outbox[0].body


def test_nothing_goes_in_quiet_hours_and_it_goes_once_after(scene):
    link, _ = link_to(scene, scene.imr)
    for moment in (at(1, 21), at(1, 23), at(2, 0, 30), at(2, 7, 59)):
        assert messaging.send_pending(moment) == (0, 0, 0)
    message = message_of(link)
    assert (message.sent_at, message.dropped_at, message.attempts) == (None, None, 0)
    assert mail.outbox == []
    assert messaging.send_pending(at(2, 9)) == (1, 0, 0)
    assert messaging.send_pending(at(2, 9, 1)) == (0, 0, 0)
    assert len(mail.outbox) == 1


def test_quiet_hours_are_a_setting(scene, settings):
    settings.SELF_REPORT_QUIET_HOURS = "8-12"
    link_to(scene, scene.imr)
    assert messaging.send_pending(at(1, 10)) == (0, 0, 0)
    assert messaging.send_pending(at(1, 23)) == (1, 0, 0)


# --- Reminders ---------------------------------------------------------------------------------


def test_reminders_are_queued_once_each_on_their_day(scene):
    link, _ = link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    sent = link.created_at
    assert messaging.queue_reminders(sent + datetime.timedelta(days=2, hours=23)) == 0
    day3 = sent + datetime.timedelta(days=3)
    assert messaging.queue_reminders(day3) == 1
    assert messaging.queue_reminders(day3) == 0
    assert messaging.queue_reminders(day3 + datetime.timedelta(days=1)) == 0
    day7 = sent + datetime.timedelta(days=7)
    assert messaging.queue_reminders(day7) == 1
    assert messaging.queue_reminders(day7 + datetime.timedelta(days=5)) == 0
    numbers = Message.objects.filter(link=link, kind="reminder").values_list("number", flat=True)
    assert sorted(numbers) == [1, 2]


def test_a_reminder_says_so_and_goes_once(scene):
    link, token = link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    day3 = at(3, 10) if at(3, 10) >= link.created_at + datetime.timedelta(days=3) else at(4, 10)
    messaging.queue_reminders(day3)
    assert messaging.send_pending(day3) == (1, 0, 0)
    assert messaging.send_pending(day3) == (0, 0, 0)
    reminder = mail.outbox[1]
    assert reminder.subject == "A reminder: your questionnaires from your research visit"
    assert f"https://trial.example.org/r/{token}/" in reminder.body
    assert message_of(link, 1).sent_at == day3


def test_reminder_days_are_a_setting(scene, settings):
    settings.SELF_REPORT_REMINDER_DAYS = [1]
    link, _ = link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    assert messaging.queue_reminders(link.created_at + datetime.timedelta(days=1)) == 1
    assert messaging.queue_reminders(link.created_at + datetime.timedelta(days=30)) == 0


def test_no_reminder_of_a_link_whose_message_never_went(scene):
    link, _ = link_to(scene, scene.imr)  # pending: not sent yet
    assert messaging.queue_reminders(link.created_at + datetime.timedelta(days=8)) == 0


def test_of_two_reminders_due_at_once_only_the_later_goes(scene):
    link, _ = link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    assert messaging.queue_reminders(link.created_at + datetime.timedelta(days=8)) == 2
    assert messaging.send_pending(at(9, 10)) == (1, 0, 1)
    assert "replaces" in message_of(link, 1).last_error
    assert message_of(link, 2).sent_at is not None


# --- None after opt-out, completion, or a withdrawn role ------------------------------------


def test_none_after_the_participant_stopped_messages(scene):
    link, _ = link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    messaging.queue_reminders(link.created_at + datetime.timedelta(days=3))
    other, _ = link_to(scene, scene.tau)  # another participant's link is not touched
    messaging.stop_messages(link)
    reminder = message_of(link, 1)
    assert reminder.dropped_at is not None
    assert reminder.last_error == messaging.STOPPED
    assert messaging.queue_reminders(link.created_at + datetime.timedelta(days=8)) == 0
    assert messaging.send_pending(at(9, 10)) == (1, 0, 0)  # the other participant's
    assert [m.to for m in mail.outbox] == [["ada@example.org"], ["bo@example.org"]]
    assert message_of(link, 1).sent_at is None
    assert not Message.objects.filter(link=link, number=2).exists()


def test_stopping_is_recorded_once_in_the_details_history(scene):
    link, _ = link_to(scene, scene.imr)
    messaging.stop_messages(link)
    details = scene.details(scene.imr)
    stopped = details.messages_stopped_at
    assert stopped is not None
    messaging.stop_messages(link)  # a second click changes nothing
    details.refresh_from_db()
    assert details.messages_stopped_at == stopped
    records = details.history.filter(messages_stopped_at__isnull=False)
    assert [r.history_change_reason for r in records] == [
        "The participant stopped messages from a link"
    ]
    assert message_of(link).dropped_at is not None  # the link's own message, still pending
    assert messaging.send_pending(DAYTIME) == (0, 0, 0)
    assert mail.outbox == []


def test_stopped_messages_are_dropped_when_they_would_go(scene):
    """Stopped by another way than the link's page (staff edited the details): the send-time
    check drops the message all the same."""
    link, _ = link_to(scene, scene.imr)
    IdentifyingDetails.objects.filter(screening__participant=scene.imr).update(
        agreed_to_links=False
    )
    assert messaging.send_pending(DAYTIME) == (0, 0, 1)
    assert "not agreed" in message_of(link).last_error
    assert mail.outbox == []


def test_none_after_the_forms_are_complete(scene):
    link, _ = link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    messaging.queue_reminders(link.created_at + datetime.timedelta(days=3))
    complete_forms(scene, scene.imr)
    assert messaging.send_pending(at(4, 10)) == (0, 0, 1)
    assert "complete" in message_of(link, 1).last_error
    assert messaging.queue_reminders(link.created_at + datetime.timedelta(days=8)) == 0
    assert len(mail.outbox) == 1


def test_none_after_the_link_finished_or_was_replaced(scene):
    link, _ = link_to(scene, scene.imr)
    messaging.send_pending(DAYTIME)
    Link.objects.filter(pk=link.pk).update(finished_at=DAYTIME)
    assert messaging.queue_reminders(link.created_at + datetime.timedelta(days=8)) == 0
    newer, _ = link_to(scene, scene.tau)
    replacing, _ = link_to(scene, scene.tau)  # the first of Bo's links is revoked
    assert messaging.send_pending(DAYTIME) == (1, 0, 1)
    assert "newer link" in message_of(newer).last_error
    assert message_of(replacing).sent_at is not None


def test_none_after_the_visit_window_closed(scene):
    link, _ = link_to(scene, scene.imr)
    assert messaging.send_pending(link.expires_at + datetime.timedelta(hours=10)) == (0, 0, 1)
    assert "window has closed" in message_of(link).last_error


def test_none_after_the_participant_withdrew(scene):
    link, _ = link_to(scene, scene.imr)
    Participant.objects.filter(pk=scene.imr.pk).update(status=Participant.Status.WITHDRAWN)
    assert messaging.send_pending(DAYTIME) == (0, 0, 1)
    assert "follow-up has ended" in message_of(link).last_error


def test_a_sender_whose_role_was_withdrawn_sends_nothing(scene):
    link, _ = link_to(scene, scene.imr)  # the assessor's grants are cached on the user now
    Membership.objects.filter(user=scene.assessor).update(active=False)
    assert messaging.send_pending(DAYTIME) == (0, 0, 1)
    message = message_of(link)
    assert message.sent_at is None
    assert "may no longer enter" in message.last_error
    assert mail.outbox == []


def test_an_inactive_sender_sends_nothing(scene):
    link, _ = link_to(scene, scene.imr)
    type(scene.assessor).objects.filter(pk=scene.assessor.pk).update(is_active=False)
    assert messaging.send_pending(DAYTIME) == (0, 0, 1)
    assert "may no longer enter" in message_of(link).last_error


# --- Failures ----------------------------------------------------------------------------------


def test_a_refusing_mail_server_counts_the_attempt_and_the_run_goes_on(scene, refusing):
    ada, _ = link_to(scene, scene.imr)
    bo, _ = link_to(scene, scene.tau)
    assert messaging.send_pending(DAYTIME) == (1, 1, 0)
    failed = message_of(ada)
    assert (failed.sent_at, failed.dropped_at, failed.attempts) == (None, None, 1)
    assert "SMTPRecipientsRefused" in failed.last_error
    assert "ada@example.org" not in failed.last_error  # no address kept in the outbox
    assert [m.to for m in mail.outbox] == [["bo@example.org"]]
    refusing.refused = set()  # the server takes it again: the next run sends it, once
    assert messaging.send_pending(DAYTIME) == (1, 0, 0)
    assert messaging.send_pending(DAYTIME) == (0, 0, 0)
    assert [m.to for m in mail.outbox] == [["bo@example.org"], ["ada@example.org"]]
    assert message_of(ada).attempts == 1


def test_a_provider_that_is_down_counts_the_attempt_and_the_next_run_sends(scene, settings):
    link, _ = link_to(scene, scene.imr, "sms")
    settings.SMS_BACKEND = f"{__name__}.DownSender"
    assert messaging.send_pending(DAYTIME) == (0, 1, 0)
    error = message_of(link).last_error
    assert "provider unreachable" in error
    assert "+4511111111" not in error
    settings.SMS_BACKEND = "selfreport.sms.LocmemSender"
    assert messaging.send_pending(DAYTIME) == (1, 0, 0)
    assert len(sms.outbox) == 1


def test_a_message_is_given_up_after_five_attempts(scene, refusing):
    link, _ = link_to(scene, scene.imr)
    for _ in range(messaging.MAX_ATTEMPTS - 1):
        assert messaging.send_pending(DAYTIME) == (0, 1, 0)
    assert message_of(link).dropped_at is None
    assert messaging.send_pending(DAYTIME) == (0, 1, 0)
    message = message_of(link)
    assert message.attempts == messaging.MAX_ATTEMPTS
    assert message.dropped_at is not None
    assert message.last_error.startswith("Given up after 5 attempts.")
    refusing.refused = set()
    assert messaging.send_pending(DAYTIME) == (0, 0, 0)
    assert mail.outbox == []


def test_dispatch_never_raises_without_a_broker(settings, monkeypatch, caplog):
    """Even if the send itself breaks (not one message's failure: the run), the caller, a link
    just committed, is not told so."""
    settings.SELF_REPORT_QUIET_HOURS = "0-0"

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    caplog.set_level(logging.ERROR, logger="selfreport.messaging")
    monkeypatch.setattr(messaging, "send_pending", broken)
    messaging.dispatch()
    assert "could not be sent now" in caplog.text


def test_the_tasks_are_those_dispatch_and_beat_name(settings):
    from selfreport import tasks

    assert tasks.send_participant_messages.name == messaging.SEND_MESSAGES
    beat = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert beat[tasks.send_participant_messages.name] == 60.0
    assert tasks.queue_participant_reminders.name in beat
