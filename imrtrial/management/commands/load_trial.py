from django.core.management.base import BaseCommand, CommandError

from imrtrial.trialconfig import TrialConfigError, load_trial


class Command(BaseCommand):
    help = "Create a trial from a shipped preset (see imrtrial/presets/) or a YAML file."

    def add_arguments(self, parser):
        parser.add_argument("source", help="preset name or path/to/trial.yaml")

    def handle(self, *args, source, **options):
        try:
            trial = load_trial(source)
        except TrialConfigError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded trial {trial.key!r}: {trial.arms.count()} arms, "
                f"{trial.sites.count()} sites, {trial.factors.count()} stratification factors. "
                "Status: in set-up."
            )
        )
