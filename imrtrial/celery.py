"""The Celery app. Tasks live in <app>/tasks.py; the beat schedule lives in settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imrtrial.settings")

app = Celery("imrtrial")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def task_named(name):
    """The task registered as `name`, for a services module to queue without importing its own
    tasks module (which imports it: no import circle). A web process has loaded no task module
    until it first queues one: Celery's own autodiscovery loads them then, as a worker does at
    start. Not send_task(name): it ignores eager mode (make run, the tests), where the task must
    run in the process."""
    if name not in app.tasks:
        app.autodiscover_tasks(force=True)
    return app.tasks[name]
