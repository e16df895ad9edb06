"""The participants' messages, sent by the worker (settings.CELERY_BEAT_SCHEDULE).

Contract: both tasks only run selfreport.messaging over its outbox, which holds every message
to send; a task lost with the broker loses nothing, and a task run twice sends nothing twice
(acks_late: a task a worker died in is run again, safely)."""

from celery import shared_task

from . import messaging


@shared_task(acks_late=True)
def send_participant_messages():
    """Every minute, and on commit of a new link: what is pending in the outbox."""
    sent, failed, dropped = messaging.send_pending()
    return {"sent": sent, "failed": failed, "dropped": dropped}


@shared_task(acks_late=True)
def queue_participant_reminders():
    """Every hour: the reminders that fell due, then everything pending."""
    queued = messaging.queue_reminders()
    sent, failed, dropped = messaging.send_pending()
    return {"queued": queued, "sent": sent, "failed": failed, "dropped": dropped}
