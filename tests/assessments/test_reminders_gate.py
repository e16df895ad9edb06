"""Every reminder asks the gate again when it is delivered, not only when it was queued; and
what a blinded recipient reads says nothing about anyone's arm."""

import datetime
import re

import pytest
from django.core import mail
from django.utils import timezone

from assessments import queries, reminders
from assessments.models import Reminder, Visit
from fidelity import reminders as attendance_reminders
from fidelity import services as fidelity
from fidelity.models import AttendanceReminder
from imrtrial import access
from imrtrial.models import Membership, Participant, Role
from randomization import services as randomization
from tests.factories import grant, make_person, make_ready_participant
from tests.security.test_crawler import WORDS

pytestmark = pytest.mark.django_db
DAY = datetime.timedelta(days=1)


def addressee(trial, role, name, site=None):
    """Someone reminders can reach: a user with an e-mail address, holding `role`."""
    return make_person(trial, role, site, name, email=f"{name}@example.org")


def withdraw(user, trial, role):
    """The trial administrator withdraws the role; the membership row stays, inactive."""
    Membership.objects.filter(user=user, trial=trial, role=role).update(active=False)


def only_post_visit_open(post_visit):
    Visit.objects.exclude(pk=post_visit.pk).update(missed=True)


def test_an_assessor_withdrawn_between_queue_and_send_gets_no_reminder(danish, post_visit):
    gone = addressee(danish, Role.ASSESSOR, "gone")
    stays = addressee(danish, Role.ASSESSOR, "stays")
    only_post_visit_open(post_visit)
    today = post_visit.window_start
    assert reminders.queue_reminders(today) == 2
    withdraw(gone, danish, Role.ASSESSOR)
    assert reminders.send_pending() == (1, 0)
    assert [m.to for m in mail.outbox] == [[stays.email]]
    line = Reminder.objects.get(recipient=gone)  # kept, not deleted
    assert line.sent_at is None and line.dropped_at is not None
    assert "no longer" in line.last_error
    # A dropped line is not tried again, and does not hold back the next day's lines.
    assert reminders.send_pending() == (0, 0)
    assert len(mail.outbox) == 1


def test_an_assessor_moved_to_another_site_hears_nothing_more_of_the_old_one(danish, post_visit):
    site = post_visit.participant.site
    other = danish.sites.exclude(pk=site.pk).first()
    moved = addressee(danish, Role.ASSESSOR, "moved", site)
    only_post_visit_open(post_visit)
    reminders.queue_reminders(post_visit.window_start)
    withdraw(moved, danish, Role.ASSESSOR)
    grant(moved, danish, Role.ASSESSOR, other)
    reminders.send_pending()
    assert mail.outbox == []
    assert Reminder.objects.get(recipient=moved).dropped_at is not None


def test_a_coordinator_withdrawn_between_queue_and_send_gets_no_overdue_reminder(
    danish, post_visit
):
    gone = addressee(danish, Role.COORDINATOR, "desk-gone")
    only_post_visit_open(post_visit)
    reminders.queue_reminders(post_visit.window_end + DAY)
    assert Reminder.objects.filter(recipient=gone, kind="overdue").exists()
    withdraw(gone, danish, Role.COORDINATOR)
    grant(gone, danish, Role.ASSESSOR)
    reminders.send_pending()
    assert gone.email not in [m.to[0] for m in mail.outbox]
    assert Reminder.objects.get(recipient=gone).dropped_at is not None


def test_a_line_of_a_kind_the_recipient_never_had_is_dropped_not_sent(danish, post_visit):
    """An escalation is for data managers: written for an assessor, it is not delivered."""
    assessor = addressee(danish, Role.ASSESSOR, "not-a-dm")
    Reminder.objects.create(
        recipient=assessor, kind="escalation", visit=post_visit, day=timezone.localdate()
    )
    assert reminders.send_pending() == (0, 0)
    assert mail.outbox == []


# --- Every kind of reminder, read from a blinded seat -----------------------------------------


ARM_WORDS = [
    *WORDS,
    r"\bIMR\b",
    r"(?i)\bgroups?\b",
    r"(?i)\bsessions?\b",
    r"(?i)\ballocat",
    r"(?i)\bconfirmation code\b",
    r"(?i)\bintervention\b",
    r"(?i)\barms?\b",
    r"(?i)\btreatment as usual\b",
]


def arm_words(body, trial, extra=()):
    """Allocation-revealing words in a mail body: [(pattern, context)]."""
    text = body.replace("imrtrial", "")
    patterns = [*ARM_WORDS, *(re.escape(x) for x in extra)]
    for arm in trial.arms.all():
        patterns += [re.escape(arm.label), rf"(?i)\b{re.escape(arm.code)}\b"]
    found = []
    for pattern in patterns:
        if m := re.search(pattern, text):
            found.append((pattern, text[max(0, m.start() - 30) : m.end() + 30]))
    return found


@pytest.fixture
def both_arms(danish, coordinator):
    """{arm code: participant}: one randomized participant in each arm, at one site."""
    from assessments.services import schedule_visits

    site = danish.sites.order_by("code").first()
    made = {}
    while set(made) != {"imr", "tau"}:
        p = make_ready_participant(danish, coordinator, site=site)
        made.setdefault(randomization.randomize(p, by=coordinator).arm.code, p)
    schedule_visits(danish)
    return {code: Participant.objects.get(pk=p.pk) for code, p in made.items()}


def test_no_reminder_of_any_kind_tells_a_blinded_recipient_an_arm(danish, coordinator, both_arms):
    site = both_arms["imr"].site
    assessor = addressee(danish, Role.ASSESSOR, "blind-assessor", site)
    dm = addressee(danish, Role.DATA_MANAGER, "blind-dm")
    addressee(danish, Role.COORDINATOR, "desk-mail", site)
    facilitator = addressee(danish, Role.FACILITATOR, "fac-mail", site)
    co_facilitator = addressee(danish, Role.FACILITATOR, "fac-mail-2", site)
    blinded = [assessor, dm]
    for user in blinded:
        assert not access.may_see_allocation(user, danish, site)

    group = fidelity.create_group(
        danish,
        site,
        by=facilitator,
        name="Tuesday recovery group",
        facilitators=[facilitator, co_facilitator],
        start_date=timezone.localdate() - datetime.timedelta(weeks=2),
        planned_sessions=12,
        capacity=8,
    )

    visits = Visit.objects.filter(timepoint__code="post", participant__in=both_arms.values())
    Visit.objects.exclude(pk__in=visits).update(missed=True)
    window_start = visits.first().window_start
    window_end = visits.first().window_end
    # Due to the assessors; then overdue to the coordinators and escalated to data managers.
    reminders.queue_reminders(window_start)
    reminders.queue_reminders(window_end + danish.escalation_after_days * DAY)
    # An open data query on each visit, for the query lines to count.
    for visit in visits:
        queries.open_query(visit, by=dm, category="other", text="Is the visit date right?")
    # And every kind written straight to a blinded seat, as a stale or mistaken line would be.
    today = timezone.localdate()
    for user in blinded:
        for kind in Reminder.Kind.values:
            for visit in visits:
                Reminder.objects.get_or_create(recipient=user, kind=kind, visit=visit, day=today)
        AttendanceReminder.objects.create(
            recipient=user, group=group, expected_on=group.start_date, day=today
        )
    AttendanceReminder.objects.create(
        recipient=facilitator, group=group, expected_on=group.start_date, day=today
    )
    reminders.send_pending()
    attendance_reminders.send_pending()

    to_blinded = [m for m in mail.outbox if m.to[0] in {u.email for u in blinded}]
    # What blinded staff are meant to get did arrive: the check below reads real mail.
    assert "Visit window open" in "".join(m.body for m in to_blinded if m.to == [assessor.email])
    assert "escalated" in "".join(m.body for m in to_blinded if m.to == [dm.email])
    for message in to_blinded:
        assert arm_words(message.subject + message.body, danish, [group.name]) == [], (
            message.to,
            message.body,
        )
    # Attendance digests name a group: they reach the facilitator, and no blinded seat.
    assert not AttendanceReminder.objects.filter(
        recipient__in=blinded, sent_at__isnull=False
    ).exists()
    assert AttendanceReminder.objects.filter(recipient=facilitator, sent_at__isnull=False).exists()

    # Visit reminders read the same whatever the arm, for every kind and every recipient.
    visit_mail = [m for m in mail.outbox if m.subject.startswith("Follow-up visits")]
    kinds_seen = set()
    for message in visit_mail:
        assert arm_words(message.body, danish, [group.name]) == [], message.body
        lines = {}
        for line in message.body.splitlines():
            for code, p in both_arms.items():
                if p.participant_id in line:
                    lines[code] = line.replace(p.participant_id, "P")
        assert lines["imr"] == lines["tau"], message.body
        kinds_seen |= {
            line.strip()[:-1]
            for line in message.body.splitlines()
            if line.strip()[:-1] in Reminder.Kind.labels and line.strip().endswith(":")
        }
    assert kinds_seen == set(Reminder.Kind.labels)
