from celery import shared_task

from . import services


@shared_task(acks_late=True)
def run_rules(run_pk):
    """One run asked for by "Run now"; a redelivered message finds the run done and stops."""
    return services.run(run_pk).status


@shared_task(acks_late=True)
def nightly_rules():
    """Beat, once a night: every rule over every trial. Idempotent (one query per rule and
    record), so a second delivery opens and closes nothing."""
    return services.nightly()
