"""Facilitators' reminders: weekly sessions of their group not logged some days after.

Same contract as assessments/reminders.py: an outbox line per (facilitator, group, expected
session date, day), written idempotently; one digest per facilitator per day, claimed with
SKIP LOCKED and marked sent only after the mail server accepted it; failures stay pending.
Blinding: a digest names IMR groups, so it is allocation-revealing. Lines are written only for
facilitators who pass imrtrial.outbox.refusal under RULE at the group's site, and each line is
asked again when the digest goes out: a facilitator whose role was withdrawn (or moved to
another site) in between gets nothing; the line is kept, marked dropped with the reason.
"""

import datetime
from collections import defaultdict

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import outbox
from imrtrial.i18n_text import short_date
from imrtrial.models import Perm, Trial

from .models import AttendanceReminder, ImrGroup

LOOK_BACK_WEEKS = 4  # older gaps are the data manager's, not a weekly nudge
# Facilitators of the group's site, unblinded there.
RULE = outbox.Rule(perms=(Perm.LOG_ATTENDANCE,), reveals_allocation=True)


def expected_dates(group, today):
    """The weekly session dates from the group's start, up to its planned number, its end and
    today."""
    dates = (group.start_date + datetime.timedelta(weeks=k) for k in range(group.planned_sessions))
    last = min(today, group.ended_on) if group.ended_on else today
    return [d for d in dates if d <= last]


@transaction.atomic
def queue_attendance_reminders(today):
    lines = []
    groups = (
        ImrGroup.objects.filter(trial__status=Trial.Status.OPEN, start_date__lte=today)
        # A group that ended before the look-back has no week left to remind of.
        .exclude(ended_on__lt=today - datetime.timedelta(weeks=LOOK_BACK_WEEKS))
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
        if not missing:
            continue
        # The group's facilitator list is not the role: it keeps someone whose role was
        # withdrawn, so the gate decides who hears of the group.
        recipients = [
            f
            for f in group.facilitators.all()
            if not outbox.refusal(f, group.trial, group.site_id, RULE)
        ]
        lines += [
            AttendanceReminder(recipient=f, group=group, expected_on=d, day=today)
            for d in missing
            for f in recipients
        ]
    before = AttendanceReminder.objects.filter(day=today).count()
    AttendanceReminder.objects.bulk_create(lines, ignore_conflicts=True)
    return AttendanceReminder.objects.filter(day=today).count() - before


def send_pending():
    return outbox.send_pending(AttendanceReminder, _claim, _render)


def _claim(recipient, day):
    rows = (
        outbox.pending(AttendanceReminder)
        .select_for_update(skip_locked=True, of=("self",))
        .filter(recipient=recipient, day=day)
        .order_by("group__name", "expected_on")
        .values_list(
            "pk",
            "group__trial_id",
            "group__site_id",
            "group__name",
            "group__site__name",
            "expected_on",
        )
    )
    return [
        outbox.Line(pk, trial_id, site_id, RULE, shows) for pk, trial_id, site_id, *shows in rows
    ]


def _render(recipient, day, lines):
    by_group = defaultdict(list)
    for line in lines:
        name, site, expected = line.shows
        by_group[f"{name} ({site})"].append(short_date(expected))
    listed = "\n".join(f"  - {g}: {', '.join(dates)}" for g, dates in by_group.items())
    body = _(
        "Dear %(name)s,\n\n"
        "No session has been logged yet for these weekly session dates:\n%(listed)s\n\n"
        "Log the session and its attendance in imrtrial, or note why it did not take place.\n"
    ) % {"name": recipient.get_full_name() or recipient.get_username(), "listed": listed}
    return _("IMR sessions to log (%(day)s)") % {"day": short_date(day)}, body


def run_daily(today=None):
    today = today or timezone.localdate()
    queued = queue_attendance_reminders(today)
    sent, failed = send_pending()
    return {"queued": queued, "sent": sent, "failed": failed}
