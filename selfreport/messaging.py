"""Every message to a participant goes out from here: their link, and the reminders of it.

Contract:
- The outbox is selfreport.Message. `services.send_link` writes the link's row (number 0) and
  calls `dispatch` on commit; `queue_reminders` writes reminder k once SELF_REPORT_REMINDER_DAYS
  [k-1] days have passed since the link went, while the link and its forms are still open.
  The unique key (link, kind, number) makes queueing idempotent.
- `send_pending` claims each pending row on its own (SELECT ... FOR UPDATE SKIP LOCKED, in a
  transaction per row) and marks it sent in that transaction only after the mail server or the
  text message provider accepted it: two senders never send one row twice. A failure counts the
  attempt and keeps the error; the row stays pending for the next run, and is dropped after
  MAX_ATTEMPTS. One row's failure never stops the run.
- Everything that decides whether a message may go is asked again when it goes (`refusal`):
  the participant's consent and opt-out, their follow-up, the visit (recorded as missed), the
  link (expired, blocked, replaced, finished), the forms still open, and the gate for the
  member of staff who sent the link (imrtrial.access.may_enter, "self_report", with the
  grants read afresh). A refused row is dropped with the reason in last_error, never sent or
  retried.
- Quiet hours (SELF_REPORT_QUIET_HOURS, in the server's time zone, settings.TIME_ZONE: a site
  has none of its own): nothing is sent or attempted;
  the rows wait for the first run after them.
- `stop_messages(link)` is the participant's one-click opt-out: it is recorded on their
  identifying details (with its history) and drops every pending message to them.
- Blinding: a message says the same to both arms' participants: its links, its last day and
  nothing else about them. No trial name, site, participant id, arm or programme word is
  written in it (tests/selfreport/test_message_blinding.py compares both arms' texts).
- Each message is written in the participant's language (participants.language_of), whatever the
  language of the request that queued it.
"""

import datetime
import logging
import re
from collections import Counter

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from imrtrial import access
from imrtrial.celery import app as celery_app
from imrtrial.celery import task_named
from imrtrial.i18n_text import short_date
from imrtrial.models import Participant
from randomization.models import IdentifyingDetails

from . import participants, sms
from .models import Link, Message

logger = logging.getLogger(__name__)

SEND_MESSAGES = "selfreport.tasks.send_participant_messages"
# After this many failed attempts a message is given up (dropped), not tried for ever.
MAX_ATTEMPTS = 5
STOPPED = "Not sent: the participant stopped messages."
EMAIL_ADDRESS = re.compile(r"[^\s'\"<>(),;:]+@[^\s'\"<>(),;:]+")


# --- Queueing ----------------------------------------------------------------------------------


def pending():
    """Messages neither sent nor dropped."""
    return Message.objects.filter(sent_at__isnull=True, dropped_at__isnull=True)


def reminder_days():
    return [int(day) for day in settings.SELF_REPORT_REMINDER_DAYS]


def queue_reminders(now=None):
    """Write the reminders that have fallen due; returns how many new rows were written."""
    now = now or timezone.now()
    days = reminder_days()
    if not days:
        return 0
    rows = []
    for link in _links_to_remind(now, min(days)):
        if not link.is_usable(now) or not participants.open_forms(link.visit, link.instruments):
            continue
        for number, day in enumerate(days, start=1):
            if now >= link.created_at + datetime.timedelta(days=day):
                rows.append((link.pk, number))
    return _insert_reminders(rows, now)


def _links_to_remind(now, first_day):
    """Usable links at least `first_day` old whose first message went, to participants who
    agreed to links, have not stopped messages and are still followed up. (A reminder of a
    message the participant never got would remind them of nothing.)"""
    who = "visit__participant__screening__identifying__"
    return (
        Link.objects.filter(
            expires_at__gt=now,
            blocked_at__isnull=True,
            revoked_at__isnull=True,
            finished_at__isnull=True,
            created_at__lte=now - datetime.timedelta(days=first_day),
            messages__kind=Message.Kind.LINK,
            messages__sent_at__isnull=False,
            **{f"{who}agreed_to_links": True, f"{who}messages_stopped_at__isnull": True},
        )
        .exclude(visit__participant__status__in=Participant.FOLLOW_UP_ENDED)
        .select_related("visit__timepoint")
        .distinct()
    )


def _insert_reminders(rows, now):
    """INSERT ... ON CONFLICT DO NOTHING: a row already queued (by an earlier run, or a run
    at the same moment) is left as it is, and the count is of the rows written here."""
    if not rows:
        return 0
    table = Message._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, 0, '')"] * len(rows))
    params = []
    for link_id, number in rows:
        params += [link_id, Message.Kind.REMINDER.value, number, now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (link_id, kind, number, created_at, attempts, last_error) "
            f"VALUES {values} ON CONFLICT DO NOTHING",
            params,
        )
        return max(cursor.rowcount, 0)


def dispatch():
    """On commit of a new message row: send it now without a broker, else queue the send.
    Never raises: the row is written, and the beat sweep sends what this could not."""
    if celery_app.conf.task_always_eager:
        try:
            send_pending()
        except Exception:
            logger.exception("Participant messages could not be sent now; the sweep will")
        return
    try:
        # No retries here: a web request must not wait for a broker that is down.
        task_named(SEND_MESSAGES).apply_async(retry=False)
    except Exception as exc:
        logger.warning("Participant messages not queued (%s); the beat sweep sends them", exc)


# --- Sending -----------------------------------------------------------------------------------


def quiet_hours():
    """(first hour, hour it ends), local time, from SELF_REPORT_QUIET_HOURS ("21-8")."""
    start, end = (int(hour) for hour in settings.SELF_REPORT_QUIET_HOURS.split("-"))
    return start, end


def is_quiet(now):
    hour = timezone.localtime(now).hour
    start, end = quiet_hours()
    if start <= end:
        return start <= hour < end  # "0-6"; "8-8" is no quiet hours at all
    return hour >= start or hour < end  # across midnight: "21-8"


def send_pending(now=None, *, limit=500):
    """Send what is pending; returns (sent, failed, dropped). `now`: the moment of the run."""
    now = now or timezone.now()
    if is_quiet(now):
        return 0, 0, 0
    done = Counter()
    for pk in pending().order_by("created_at", "pk").values_list("pk", flat=True)[:limit]:
        try:
            done[_send_one(pk, now)] += 1
        except Exception:  # not even claimed (the database?): the next run tries again
            logger.exception("Participant message %s could not be claimed", pk)
            done["failed"] += 1
    return done["sent"], done["failed"], done["dropped"]


@transaction.atomic
def _send_one(pk, now):
    """Claim, check and send one message, in one transaction; what became of it."""
    message = _claim(pk)
    if message is None:
        return "taken"  # another sender holds it, or it went meanwhile
    details = None
    try:
        # A savepoint: whatever fails in here (a query too), the row's lock is still ours and
        # the failure is written under it.
        with transaction.atomic():
            details = participants.details_of(message.link.visit.participant)
            if reason := refusal(message, details, now):
                logger.info("Participant message %s dropped: %s", pk, reason)
                _update(pk, dropped_at=now, last_error=reason)
                return "dropped"
            deliver(message, details)
    except Exception as exc:
        return _failed(message, _described(exc, details), now)
    _update(pk, sent_at=now)
    return "sent"


def _claim(pk):
    return (
        pending()
        .select_for_update(skip_locked=True, of=("self",))
        .select_related(
            "link__created_by", "link__visit__timepoint", "link__visit__participant__trial"
        )
        .filter(pk=pk)
        .first()
    )


def _update(pk, **fields):
    Message.objects.filter(pk=pk).update(**fields)


def _described(exc, details):
    """The error without the participant's address: a mail server's refusal names the
    recipient, and the outbox and the log are not where identifying details are kept."""
    text = f"{type(exc).__name__}: {exc}"
    for address in (details.email, details.phone) if details else ():
        if address:
            text = text.replace(address, "<address>")
    return EMAIL_ADDRESS.sub("<address>", text)


def _failed(message, error, now):
    attempts = message.attempts + 1
    error = error[:250]
    logger.warning("Participant message %s failed (attempt %s): %s", message.pk, attempts, error)
    if attempts >= MAX_ATTEMPTS:
        error = f"Given up after {attempts} attempts. {error}"[:300]
        _update(message.pk, attempts=F("attempts") + 1, last_error=error, dropped_at=now)
    else:
        _update(message.pk, attempts=F("attempts") + 1, last_error=error)
    return "failed"


def refusal(message, details, now):
    """Why `message` may not go now ("" if it may), asked afresh at send time."""
    link = message.link
    participant = link.visit.participant
    if details is None or not details.agreed_to_links:
        return "Not sent: the participant has not agreed to links."
    if details.messages_stopped_at is not None:
        return STOPPED
    if participant.status in Participant.FOLLOW_UP_ENDED:
        return "Not sent: the participant's follow-up has ended."
    if link.visit.missed:
        return "Not sent: the visit was recorded as missed."
    if reason := _link_refusal(link, now):
        return reason
    if not participants.open_forms(link.visit, link.instruments):
        return "Not sent: every questionnaire of the link is complete."
    if not _sender_may(link.created_by, participant):
        return (
            "Not sent: the member of staff who sent the link may no longer enter this "
            "participant's questionnaires."
        )
    if not _address(link.channel, details):
        return "Not sent: the participant's contact detail for this channel is missing."
    if message.kind == Message.Kind.REMINDER and _later_reminder(message):
        return "Not sent: a later reminder of the link replaces it."
    return ""


def _link_refusal(link, now):
    if link.finished_at is not None:
        return "Not sent: every questionnaire of the link is complete."
    if link.revoked_at is not None:
        return "Not sent: a newer link replaced this one."
    if link.blocked_at is not None:
        return "Not sent: the link is blocked after wrong answers to its check."
    if link.expires_at <= now:
        return "Not sent: the visit window has closed."
    return ""


def _sender_may(user, participant):
    if not user.is_active:
        return False
    access.forget(user)  # a role withdrawn since the link went must count
    return access.may_enter(user, participant, participants.RATER)


def _later_reminder(message):
    """A reminder whose later one is also queued (a sweep missed a day): only the last goes."""
    return (
        Message.objects.filter(
            link_id=message.link_id, kind=Message.Kind.REMINDER, number__gt=message.number
        )
        .filter(dropped_at__isnull=True)
        .exists()
    )


def _address(channel, details):
    return details.email if channel == Link.Channel.EMAIL else details.phone


def deliver(message, details):
    """Hand the message to the mail server or the text message provider; raises if refused."""
    link = message.link
    with translation.override(participants.language_of(link.visit.participant, details)):
        texts = render(message)
    if link.channel == Link.Channel.EMAIL:
        send_mail(texts["subject"], texts["body"], settings.DEFAULT_FROM_EMAIL, [details.email])
    else:
        sms.get_sender().send(details.phone, texts["sms"])


def render(message):
    """{"subject", "body", "sms"} of the message, in the active language."""
    link = message.link
    token = participants.token_of(link)
    context = {
        "reminder": message.kind == Message.Kind.REMINDER,
        "url": settings.SITE_URL + reverse("selfreport:link", args=[token]),
        "stop_url": settings.SITE_URL + reverse("selfreport:stop", args=[token]),
        "last_day": short_date(link.visit.window_end),
    }
    folder = "selfreport/messages"
    return {
        "subject": " ".join(render_to_string(f"{folder}/subject.txt", context).split()),
        "body": render_to_string(f"{folder}/email.txt", context).strip() + "\n",
        "sms": " ".join(render_to_string(f"{folder}/sms.txt", context).split()),
    }


# --- The participant's opt-out -----------------------------------------------------------------


@transaction.atomic
def stop_messages(link):
    """The participant stops all messages: recorded on their identifying details (with its
    history), and every pending message to them dropped. Idempotent."""
    participant_id = link.visit.participant_id
    details = (
        IdentifyingDetails.objects.select_for_update(of=("self",))
        .filter(screening__participant_id=participant_id)
        .first()
    )
    now = timezone.now()
    if details is not None and details.messages_stopped_at is None:
        details.messages_stopped_at = now
        details._change_reason = "The participant stopped messages from a link"
        details.save(update_fields=["messages_stopped_at"])
    pending().filter(link__visit__participant_id=participant_id).update(
        dropped_at=now, last_error=STOPPED
    )
