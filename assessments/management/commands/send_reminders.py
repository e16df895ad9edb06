import datetime

from django.core.management.base import BaseCommand, CommandError

from assessments.reminders import run_daily


class Command(BaseCommand):
    help = "Run the daily follow-up reminder job now (queue today's reminders, send pending)."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="run as if today were this date (YYYY-MM-DD)")

    def handle(self, *args, date=None, **options):
        try:
            today = datetime.date.fromisoformat(date) if date else None
        except ValueError:
            raise CommandError("--date must be YYYY-MM-DD") from None
        result = run_daily(today)
        self.stdout.write(
            f"Queued {result['queued']} reminder line(s); sent {result['sent']} digest(s); "
            f"{result['failed']} failed and stay pending."
        )
