from celery import shared_task

from . import reminders


@shared_task(acks_late=True)
def daily_attendance_reminders():
    """Beat, once a day; idempotent like the visit reminders."""
    return reminders.run_daily()
