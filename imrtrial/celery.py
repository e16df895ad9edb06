"""The Celery app. Tasks live in <app>/tasks.py; the beat schedule lives in settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imrtrial.settings")

app = Celery("imrtrial")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
