from celery import shared_task

from . import reminders


@shared_task(acks_late=True)
def daily_reminders():
    """Beat, once a day. Safe to run twice: the outbox key makes queueing idempotent."""
    return reminders.run_daily()


@shared_task(acks_late=True)
def send_pending_reminders():
    return reminders.send_pending()
