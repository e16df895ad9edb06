from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from imrtrial.models import Trial
from randomization.listing import ListError, import_list


class Command(BaseCommand):
    help = "Import the trial statistician's allocation list (CSV: stratum,slot,arm)."

    def add_arguments(self, parser):
        parser.add_argument("trial", help="trial key")
        parser.add_argument("path", help="CSV file")

    def handle(self, *args, trial, path, **options):
        try:
            trial = Trial.objects.get(key=trial)
        except Trial.DoesNotExist:
            raise CommandError(f"No trial with key {trial!r}.") from None
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
            n = import_list(trial, text)
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        except ListError as exc:
            problems = "\n  - ".join(exc.problems)
            raise CommandError(f"The list was not imported:\n  - {problems}") from None
        self.stdout.write(self.style.SUCCESS(f"Imported {n} slots. Their content is not shown."))
