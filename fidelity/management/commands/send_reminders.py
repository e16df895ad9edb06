import datetime

from django.core.management.base import BaseCommand, CommandError

from assessments import reminders as visit_reminders
from fidelity import reminders as attendance_reminders


class Command(BaseCommand):
    help = (
        "Run the daily reminder jobs now: follow-up visits (assessors, coordinators, data "
        "managers) and unlogged IMR sessions (facilitators). Queues today's lines, sends pending."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="run as if today were this date (YYYY-MM-DD)")

    def handle(self, *args, date=None, **options):
        try:
            today = datetime.date.fromisoformat(date) if date else None
        except ValueError:
            raise CommandError("--date must be YYYY-MM-DD") from None
        for name, job in (("Visit", visit_reminders), ("Attendance", attendance_reminders)):
            result = job.run_daily(today)
            self.stdout.write(
                f"{name} reminders: queued {result['queued']} line(s); sent {result['sent']} "
                f"digest(s); {result['failed']} failed and stay pending."
            )
