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
- The gate is asked again when a digest goes out (imrtrial.outbox.refusal): each line's
  recipient must still hold the role its kind is for at the participant's site (RULES). A line
  that fails is kept, marked dropped with the reason, and never sent.
"""

import datetime
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from imrtrial import outbox
from imrtrial.i18n_text import localized, short_date
from imrtrial.models import Membership, Participant, Perm, Role, Trial, UnblindingIncident

from .models import DataQuery, Reminder, Visit
from .queries import may_answer

# A participant still followed up: not withdrawn, excluded or dead (constants, not user input).
_FOLLOWED = "p.status NOT IN ({})".format(
    ", ".join(f"'{status}'" for status in Participant.FOLLOW_UP_ENDED)
)

# Who each kind of line is for, as the permission that marks the role (queue_reminders picks
# the recipients by that role); asked again at send time.
RULES = {
    Reminder.Kind.DUE: outbox.Rule(perms=(Perm.ENTER_INTERVIEW,), reveals_allocation=False),
    Reminder.Kind.OVERDUE: outbox.Rule(perms=(Perm.RANDOMIZE,), reveals_allocation=False),
    Reminder.Kind.ESCALATION: outbox.Rule(perms=(Perm.VERIFY_FORMS,), reveals_allocation=False),
    # The addressee of a query entered the form: a blinded assessor, or (a staff-rated form)
    # an unblinded rater, who is told no more than the participant, visit and query count.
    Reminder.Kind.QUERY: outbox.Rule(
        perms=(Perm.ENTER_INTERVIEW, Perm.ENTER_STAFF_RATING), reveals_allocation=False
    ),
}


def _insert(cursor, select_sql, params):
    """INSERT the (recipient, kind, visit) rows a SELECT yields as today's reminder lines."""
    R = Reminder._meta
    cursor.execute(
        f"INSERT INTO {R.db_table} (recipient_id, kind, visit_id, day, created_at, attempts, "
        f"last_error) SELECT DISTINCT q.recipient_id, q.kind, q.visit_id, %s, %s, 0, '' "
        # "WHERE true": SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT.
        f"FROM ({select_sql}) q WHERE true ON CONFLICT DO NOTHING",
        [params["today"], params["now"], *params["args"]],
    )
    return max(cursor.rowcount, 0)


@transaction.atomic
def queue_reminders(today):
    """Write today's reminder lines; returns how many new lines were written.

    Set-based: four INSERT ... SELECT statements per trial, whatever the number of
    participants. Each trial's lead and escalation days become date parameters, so the SQL is
    the same on PostgreSQL and on the embedded SQLite."""
    V, P, M = Visit._meta.db_table, Participant._meta.db_table, Membership._meta.db_table
    U = get_user_model()._meta.db_table
    staff = (
        f"JOIN {M} m ON m.trial_id = p.trial_id AND m.active AND m.role = %s "
        f"AND (m.site_id = p.site_id OR m.site_id IS NULL) "
        f"JOIN {U} u ON u.id = m.user_id AND u.is_active"
    )
    # A visit still to be seen: of a participant not withdrawn, neither completed nor missed.
    TO_SEE = f"{_FOLLOWED} AND v.completed_on IS NULL AND NOT v.missed"  # noqa: N806
    now = timezone.now()
    written = 0
    with connection.cursor() as cursor:
        for trial_id, lead, escalate in Trial.objects.filter(
            status__in=[Trial.Status.OPEN, Trial.Status.CLOSED]
        ).values_list("pk", "reminder_lead_days", "escalation_after_days"):
            due_by = today + datetime.timedelta(days=lead)
            escalate_by = today - datetime.timedelta(days=escalate)
            base = {"today": today, "now": now}
            # The assigned assessor, while they still hold the assessor role at the site.
            written += _insert(
                cursor,
                (
                    f"SELECT v.assessor_id AS recipient_id, 'due' AS kind, v.id AS visit_id "
                    f"FROM {V} v JOIN {P} p ON p.id = v.participant_id {staff} "
                    f"AND m.user_id = v.assessor_id "
                    f"WHERE p.trial_id = %s AND {TO_SEE} "
                    f"AND v.window_end >= %s AND v.window_start <= %s"
                ),
                base | {"args": [Role.ASSESSOR.value, trial_id, today, due_by]},
            )
            written += _insert(
                cursor,
                (
                    f"SELECT m.user_id AS recipient_id, 'due' AS kind, v.id AS visit_id "
                    f"FROM {V} v JOIN {P} p ON p.id = v.participant_id {staff} "
                    f"WHERE p.trial_id = %s AND {TO_SEE} AND v.assessor_id IS NULL "
                    f"AND v.window_end >= %s AND v.window_start <= %s"
                ),
                base | {"args": [Role.ASSESSOR.value, trial_id, today, due_by]},
            )
            written += _insert(
                cursor,
                (
                    f"SELECT m.user_id AS recipient_id, 'overdue' AS kind, v.id AS visit_id "
                    f"FROM {V} v JOIN {P} p ON p.id = v.participant_id {staff} "
                    f"WHERE p.trial_id = %s AND {TO_SEE} AND v.window_end < %s"
                ),
                base | {"args": [Role.COORDINATOR.value, trial_id, today]},
            )
            written += _insert(
                cursor,
                (
                    f"SELECT m.user_id AS recipient_id, 'escalation' AS kind, v.id AS visit_id "
                    f"FROM {V} v JOIN {P} p ON p.id = v.participant_id {staff} "
                    f"WHERE p.trial_id = %s AND {TO_SEE} AND v.window_end <= %s"
                ),
                base | {"args": [Role.DATA_MANAGER.value, trial_id, escalate_by]},
            )
            written += _queue_queries(cursor, trial_id, base, staff)
    return written


def _queue_queries(cursor, trial_id, base, staff):
    """Open queries older than the trial's query reminder days: a line for the addressee, or
    for every assessor of the site when the query is addressed to the site (but an assessor
    the participant unblinded, who may not answer it)."""
    Q, P = DataQuery._meta.db_table, Participant._meta.db_table  # noqa: N806
    I = UnblindingIncident._meta.db_table  # noqa: N806, E741
    days = Trial.objects.filter(pk=trial_id).values_list("query_reminder_days", flat=True)[0]
    opened_by = base["now"] - datetime.timedelta(days=days)
    waiting = f"p.trial_id = %s AND {_FOLLOWED} AND q.status = 'open' AND q.opened_at <= %s"
    written = _insert(
        cursor,
        f"SELECT q.addressed_to_id AS recipient_id, 'query' AS kind, q.visit_id AS visit_id "
        f"FROM {Q} q JOIN {P} p ON p.id = q.participant_id "
        f"WHERE {waiting} AND q.addressed_to_id IS NOT NULL",
        base | {"args": [trial_id, opened_by]},
    )
    written += _insert(
        cursor,
        f"SELECT m.user_id AS recipient_id, 'query' AS kind, q.visit_id AS visit_id "
        f"FROM {Q} q JOIN {P} p ON p.id = q.participant_id {staff} "
        f"WHERE {waiting} AND q.addressed_to_id IS NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {I} i WHERE i.participant_id = p.id AND i.assessor_id = m.user_id)",
        base | {"args": [Role.ASSESSOR.value, trial_id, opened_by]},
    )
    return written


def send_pending(*, limit=500):
    """Send digests for pending lines; returns (digests sent, digests failed)."""
    return outbox.send_pending(Reminder, _claim, _render, limit=limit, check=_check)


def _claim(recipient, day):
    # Claim and read the lines in one query: locked rows another sender holds are skipped.
    rows = (
        outbox.pending(Reminder)
        .select_for_update(skip_locked=True, of=("self",))
        .filter(recipient=recipient, day=day)
        .order_by("kind", "visit__window_end", "visit__participant__participant_id")
        .values_list(
            "pk",
            "visit__participant__trial_id",
            "visit__participant__site_id",
            "kind",
            "visit__participant__participant_id",
            "visit__participant__site__name",
            "visit__timepoint__label",
            "visit__timepoint__translations",
            "visit__window_start",
            "visit__window_end",
            "visit_id",
        )
    )
    return [
        outbox.Line(pk, trial_id, site_id, RULES[shows[0]], shows)
        for pk, trial_id, site_id, *shows in rows
    ]


def _check(recipient, lines):
    """A query line whose queries the recipient may no longer answer is dropped, not sent."""
    visit_ids = [line.shows[-1] for line in lines if line.shows[0] == "query"]
    waiting = _queries_waiting(recipient, visit_ids)
    return {
        line.pk: "No open query of this visit is the recipient's to answer any more."
        for line in lines
        if line.shows[0] == "query" and line.shows[-1] not in waiting
    }


def _render(recipient, day, lines):
    sections = defaultdict(list)
    waiting = _queries_waiting(
        recipient, [line.shows[-1] for line in lines if line.shows[0] == "query"]
    )
    for line in lines:
        kind, pid, site, english, translations, start, end, visit_id = line.shows
        label = localized(english, translations)  # the recipient's language is active
        if kind == Reminder.Kind.QUERY:
            n, oldest = waiting.get(visit_id, (0, None))
            text = ngettext(
                "%(pid)s (%(site)s): %(label)s, %(n)s open data query",
                "%(pid)s (%(site)s): %(label)s, %(n)s open data queries",
                n,
            ) % {"pid": pid, "site": site, "label": label, "n": n}
            if oldest:
                text += _(", the oldest opened %(date)s") % {"date": short_date(oldest)}
        else:
            text = _("%(pid)s (%(site)s): %(label)s, window %(start)s to %(end)s") % {
                "pid": pid,
                "site": site,
                "label": label,
                "start": short_date(start),
                "end": short_date(end),
            }
        sections[str(Reminder.Kind(kind).label)].append(text)
    body = render_to_string(
        "assessments/reminder_digest.txt",
        {
            "recipient": recipient,
            "day": day,
            "sections": sorted(sections.items()),
        },
    )
    return _("Follow-up visits to see to (%(day)s)") % {"day": short_date(day)}, body


def _queries_waiting(recipient, visit_ids):
    """{visit id: (open queries the recipient may answer now, when the oldest was opened)}.
    Asked query by query at send time (queries.may_answer): a line queued for someone who
    entered a staff-rated form and has since lost that role counts nothing of that form."""
    if not visit_ids:
        return {}
    found = {}
    waiting = (
        DataQuery.objects.filter(visit_id__in=visit_ids, status=DataQuery.Status.OPEN)
        .filter(models.Q(addressed_to=recipient) | models.Q(addressed_to__isnull=True))
        .select_related("participant__trial", "participant__site", "entry")
    )
    for query in waiting:
        if may_answer(recipient, query):
            n, oldest = found.get(query.visit_id, (0, query.opened_at))
            found[query.visit_id] = (n + 1, min(oldest, query.opened_at))
    return found


def run_daily(today=None):
    """The daily job: queue, then send what is pending (also what earlier runs could not)."""
    from .services import schedule_visits

    today = today or timezone.localdate()
    for trial in Trial.objects.filter(status__in=[Trial.Status.OPEN, Trial.Status.CLOSED]):
        schedule_visits(trial)
    queued = queue_reminders(today)
    sent, failed = send_pending()
    return {"queued": queued, "sent": sent, "failed": failed}
