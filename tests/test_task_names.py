"""Services queue their Celery tasks by name, since the task modules import the services (and a
module does not import what imports it): the names are those the tasks are registered under,
and a process that has loaded no task module yet still finds them."""

import os
import subprocess
import sys
from pathlib import Path

from exports import services as export_services
from exports import tasks as export_tasks
from randomization import services as randomization_services
from randomization import tasks as randomization_tasks

ROOT = Path(__file__).resolve().parents[1]

FRESH_PROCESS = """
import sys
import django

django.setup()
from exports import services as exports
from imrtrial.celery import task_named
from randomization import services as randomization

assert "exports.tasks" not in sys.modules and "randomization.tasks" not in sys.modules
assert task_named(exports.BUILD_EXPORT).name == exports.BUILD_EXPORT
assert task_named(randomization.NOTIFY_ALLOCATION).name == randomization.NOTIFY_ALLOCATION
"""


def test_the_names_the_services_queue_are_those_of_the_tasks():
    assert export_tasks.build_export.name == export_services.BUILD_EXPORT
    assert randomization_tasks.notify_allocation.name == randomization_services.NOTIFY_ALLOCATION


def test_a_process_that_has_loaded_no_task_module_finds_the_tasks_by_name():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "imrtrial.settings"}
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
