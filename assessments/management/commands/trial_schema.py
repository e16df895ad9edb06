"""Print the JSON Schema of the trial file (or of an instrument definition), for an editor's
completion and checks: `manage.py trial_schema > trial.schema.json`."""

import json

from django.core.management.base import BaseCommand

from assessments import definitions
from imrtrial import trialconfig


class Command(BaseCommand):
    help = "Print the JSON Schema of the trial file, or with --instrument of an instrument file."

    def add_arguments(self, parser):
        parser.add_argument("--instrument", action="store_true")

    def handle(self, *args, instrument=False, **options):
        document = definitions.json_schema() if instrument else trialconfig.json_schema()
        self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
