"""Facilitators' reminders: weekly sessions of their group not logged some days after.

Same contract as assessments/reminders.py: an outbox line per (facilitator, group, expected
session date, day), written idempotently; one digest per facilitator per day, claimed with
SKIP LOCKED and marked sent only after the mail server accepted it; failures stay pending.
Only unblinded facilitators receive these; nothing here reaches a blinded role.
"""

import datetime
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from imrtrial import outbox
from imrtrial.models import Trial

from .models import AttendanceReminder, ImrGroup

LOOK_BACK_WEEKS = 4  # older gaps are the data manager's, not a weekly nudge


def expected_dates(group, today):
    """The weekly session dates from the group's start, up to its planned number and today."""
    dates = (group.start_date + datetime.timedelta(weeks=k) for k in range(group.planned_sessions))
    return [d for d in dates if d <= today]


@transaction.atomic
def queue_attendance_reminders(today):
    lines = []
    groups = (
        ImrGroup.objects.filter(trial__status=Trial.Status.OPEN, start_date__lte=today)
        .select_related("trial")
        .prefetch_related("facilitators", "sessions")
    )
    for group in groups:
        after = datetime.timedelta(days=group.trial.attendance_reminder_after_days)
        logged = {s.date for s in group.sessions.all()}
        oldest = today - datetime.timedelta(weeks=LOOK_BACK_WEEKS)
        missing = [
            d
            for d in expected_dates(group, today)
            if oldest <= d <= today - after and d not in logged
        ]
        lines += [
            AttendanceReminder(recipient=f, group=group, expected_on=d, day=today)
            for d in missing
            for f in group.facilitators.all()
            if f.is_active
        ]
    before = AttendanceReminder.objects.filter(day=today).count()
    AttendanceReminder.objects.bulk_create(lines, ignore_conflicts=True)
    return AttendanceReminder.objects.filter(day=today).count() - before


def send_pending():
    return outbox.send_pending(AttendanceReminder, _compose)


def _compose(recipient, day):
    rows = list(
        AttendanceReminder.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(recipient=recipient, day=day, sent_at__isnull=True)
        .order_by("group__name", "expected_on")
        .values_list("pk", "group__name", "group__site__name", "expected_on")
    )
    if not rows:
        return None
    by_group = defaultdict(list)
    for _, name, site, expected in rows:
        by_group[f"{name} ({site})"].append(f"{expected:%Y-%m-%d}")
    lines = "\n".join(f"  - {g}: {', '.join(dates)}" for g, dates in by_group.items())
    body = (
        f"Dear {recipient.get_full_name() or recipient.get_username()},\n\n"
        f"No session has been logged yet for these weekly session dates:\n{lines}\n\n"
        "Log the session and its attendance in imrtrial, or note why it did not take place.\n"
    )
    return [r[0] for r in rows], f"IMR sessions to log ({day:%Y-%m-%d})", body


def run_daily(today=None):
    today = today or timezone.localdate()
    queued = queue_attendance_reminders(today)
    sent, failed = send_pending()
    return {"queued": queued, "sent": sent, "failed": failed}
