"""Follow-up reminders through an outbox.

Contract:
- queue_reminders(today) writes the day's reminder lines, set-based, in one transaction, with a
  query count that does not grow with the number of participants. Running it twice writes
  nothing new (unique recipient, kind, visit, day).
- send_pending() mails one digest per recipient and day from the unsent lines it can claim
  (SELECT ... FOR UPDATE SKIP LOCKED), marking them sent only after the mail server accepted the
  message. A failure leaves the lines pending, counts the attempt and keeps the error, which
  the coordinators' reminders page shows; the next run sends them.
- Blinding: a line names a participant id, a visit and its window, never a group or session;
  visit windows are anchored on randomization for both arms, so the timing cannot differ.
"""

import datetime
import logging
from collections import defaultdict

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from imrtrial.models import Membership, Participant, Role, Trial

from .models import Reminder, Visit

logger = logging.getLogger(__name__)


def _staff_by_site(role):
    """{(trial id, site id or None): [user ids]} for active members of a role."""
    out = defaultdict(list)
    for trial_id, site_id, user_id in Membership.objects.filter(
        role=role, active=True, user__is_active=True
    ).values_list("trial_id", "site_id", "user_id"):
        out[trial_id, site_id].append(user_id)
    return out


def _people(staff, trial_id, site_id):
    return set(staff.get((trial_id, site_id), ())) | set(staff.get((trial_id, None), ()))


@transaction.atomic
def queue_reminders(today):
    """Write today's reminder lines; returns how many new lines were written."""
    rules = {
        pk: (lead, escalate)
        for pk, lead, escalate in Trial.objects.values_list(
            "pk", "reminder_lead_days", "escalation_after_days"
        )
    }
    horizon = today + datetime.timedelta(days=max((r[0] for r in rules.values()), default=0))
    open_visits = (
        Visit.objects.filter(completed_on__isnull=True, missed=False)
        .exclude(participant__status=Participant.Status.WITHDRAWN)
        .filter(Q(window_end__lt=today) | Q(window_start__lte=horizon))
        .values_list(
            "pk",
            "assessor_id",
            "window_start",
            "window_end",
            "participant__trial_id",
            "participant__site_id",
        )
    )
    assessors = _staff_by_site(Role.ASSESSOR)
    coordinators = _staff_by_site(Role.COORDINATOR)
    data_managers = _staff_by_site(Role.DATA_MANAGER)
    lines = []
    for visit_id, assessor_id, start, end, trial_id, site_id in open_visits:
        lead, escalate_after = rules[trial_id]
        if end >= today:  # window open, or opening within the trial's lead time
            if start > today + datetime.timedelta(days=lead):
                continue
            who = {assessor_id} if assessor_id else _people(assessors, trial_id, site_id)
            lines += [
                Reminder(recipient_id=u, kind=Reminder.Kind.DUE, visit_id=visit_id, day=today)
                for u in who
            ]
            continue
        lines += [
            Reminder(recipient_id=u, kind=Reminder.Kind.OVERDUE, visit_id=visit_id, day=today)
            for u in _people(coordinators, trial_id, site_id)
        ]
        if (today - end).days >= escalate_after:
            lines += [
                Reminder(
                    recipient_id=u, kind=Reminder.Kind.ESCALATION, visit_id=visit_id, day=today
                )
                for u in _people(data_managers, trial_id, site_id)
            ]
    before = Reminder.objects.filter(day=today).count()
    Reminder.objects.bulk_create(lines, ignore_conflicts=True, batch_size=2000)
    return Reminder.objects.filter(day=today).count() - before


def send_pending(*, limit=500):
    """Send digests for unsent lines; returns (digests sent, digests failed)."""
    keys = list(
        Reminder.objects.filter(sent_at__isnull=True)
        .values_list("recipient_id", "day")
        .distinct()
        .order_by("day", "recipient_id")[:limit]
    )
    sent = failed = 0
    for recipient_id, day in keys:
        try:
            sent += _send_digest(recipient_id, day)
        except Exception as exc:  # the mail server said no or is unreachable: keep for later
            failed += 1
            logger.warning("Reminder digest to user %s for %s failed: %s", recipient_id, day, exc)
            Reminder.objects.filter(
                recipient_id=recipient_id, day=day, sent_at__isnull=True
            ).update(attempts=F("attempts") + 1, last_error=str(exc)[:300])
    return sent, failed


@transaction.atomic
def _send_digest(recipient_id, day):
    lines = list(
        Reminder.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(recipient_id=recipient_id, day=day, sent_at__isnull=True)
        .select_related(
            "recipient", "visit__participant__site", "visit__participant__trial", "visit__timepoint"
        )
        .order_by("kind", "visit__window_end")
    )
    if not lines:
        return 0  # another sender holds them
    recipient = lines[0].recipient
    if not recipient.email:
        Reminder.objects.filter(pk__in=[r.pk for r in lines]).update(
            attempts=F("attempts") + 1, last_error="The recipient has no e-mail address."
        )
        return 0
    by_kind = defaultdict(list)
    for line in lines:
        by_kind[line.kind].append(line.visit)
    body = render_to_string(
        "assessments/reminder_digest.txt",
        {
            "recipient": recipient,
            "day": day,
            "sections": [
                (Reminder.Kind(kind).label, visits) for kind, visits in sorted(by_kind.items())
            ],
        },
    )
    send_mail(
        f"Follow-up visits to see to ({day:%Y-%m-%d})",
        body,
        settings.DEFAULT_FROM_EMAIL,
        [recipient.email],
    )
    Reminder.objects.filter(pk__in=[r.pk for r in lines]).update(sent_at=timezone.now())
    return 1


def run_daily(today=None):
    """The daily job: queue, then send what is pending (also what earlier runs could not)."""
    from .services import schedule_visits

    today = today or timezone.localdate()
    for trial in Trial.objects.filter(status__in=[Trial.Status.OPEN, Trial.Status.CLOSED]):
        schedule_visits(trial)
    queued = queue_reminders(today)
    sent, failed = send_pending()
    return {"queued": queued, "sent": sent, "failed": failed}
