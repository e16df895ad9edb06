from celery import shared_task

from . import services


@shared_task(acks_late=True)
def build_export(run_pk):
    """Builds the file of one export; a redelivered message finds the run done and stops."""
    return services.build(run_pk).status
