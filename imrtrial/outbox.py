"""Sending digests from an outbox table: shared by the visit and the attendance reminders.

An outbox model has recipient, day, sent_at, attempts and last_error. `send_pending` sends one
digest per (recipient, day) with unsent lines; `compose` claims the lines (SELECT ... FOR UPDATE
SKIP LOCKED, inside the transaction `send_digest` opens) and returns (ids, subject, body) or
None when another sender holds them. Lines are marked sent in that same transaction, only after
the mail server accepted the message; any failure leaves them pending with the error counted.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

logger = logging.getLogger(__name__)


def send_pending(model, compose, *, limit=500):
    """(digests sent, digests failed)."""
    keys = list(
        model.objects.filter(sent_at__isnull=True)
        .values_list("recipient_id", "day")
        .distinct()
        .order_by("day", "recipient_id")[:limit]
    )
    sent = failed = 0
    for recipient_id, day in keys:
        try:
            sent += send_digest(model, compose, recipient_id, day)
        except Exception as exc:  # the mail server said no or is unreachable: keep for later
            failed += 1
            logger.warning(
                "%s digest to user %s for %s failed: %s", model.__name__, recipient_id, day, exc
            )
            model.objects.filter(recipient_id=recipient_id, day=day, sent_at__isnull=True).update(
                attempts=F("attempts") + 1, last_error=str(exc)[:300]
            )
    return sent, failed


@transaction.atomic
def send_digest(model, compose, recipient_id, day):
    recipient = get_user_model().objects.get(pk=recipient_id)
    composed = compose(recipient, day)
    if composed is None:
        return 0  # another sender holds these lines
    ids, subject, body = composed
    if not recipient.email:
        model.objects.filter(pk__in=ids).update(
            attempts=F("attempts") + 1, last_error="The recipient has no e-mail address."
        )
        return 0
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    model.objects.filter(pk__in=ids).update(sent_at=timezone.now())
    return 1
