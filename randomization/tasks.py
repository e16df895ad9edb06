from celery import shared_task

from . import services


@shared_task(bind=True, max_retries=5, default_retry_delay=60, acks_late=True)
def notify_allocation(self, allocation_pk):
    """E-mail the unblinded staff of the site; retried if the mail server is down. Only for
    messages queued before the outbox (send_allocation_notices): nothing queues it now."""
    try:
        return services.send_allocation_notice(allocation_pk)
    except OSError as exc:
        raise self.retry(exc=exc) from exc


@shared_task
def send_allocation_notices():
    """Every minute (settings.CELERY_BEAT_SCHEDULE): the notices of new allocations."""
    return services.send_pending_notices()
