"""Follow-up reminders: who hears of what and when, exactly once, through failures."""

import datetime
import threading

import pytest
from django.core import mail

from assessments import reminders
from assessments.models import Reminder, Visit
from imrtrial.models import Participant, Role, Trial
from randomization import services as randomization
from tests.factories import grant, make_ready_participant, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(person):
    """An assessor, a coordinator and a data manager with e-mail addresses, by role."""
    return {
        role: person(role, username=f"r-{role}", email=f"{role}@example.org")
        for role in (Role.ASSESSOR, Role.COORDINATOR, Role.DATA_MANAGER)
    }


def window(visit):
    return visit.window_start, visit.window_end


def kinds_for(user, day):
    return sorted(Reminder.objects.filter(recipient=user, day=day).values_list("kind", flat=True))


def test_due_overdue_and_escalation_at_the_window_edges(danish, staff, post_visit):
    start, end = window(post_visit)
    lead, escalate = danish.reminder_lead_days, danish.escalation_after_days
    assessor, desk, dm = staff[Role.ASSESSOR], staff[Role.COORDINATOR], staff[Role.DATA_MANAGER]
    day = datetime.timedelta(days=1)
    cases = [
        (start - (lead + 1) * day, [], [], []),
        (start - lead * day, ["due"], [], []),
        (end, ["due"], [], []),
        (end + day, [], ["overdue"], []),
        (end + (escalate - 1) * day, [], ["overdue"], []),
        (end + escalate * day, [], ["overdue"], ["escalation"]),
    ]
    for today, for_assessor, for_desk, for_dm in cases:
        Reminder.objects.all().delete()
        Visit.objects.exclude(pk=post_visit.pk).update(missed=True)  # only this visit matters
        reminders.queue_reminders(today)
        assert (kinds_for(assessor, today), kinds_for(desk, today), kinds_for(dm, today)) == (
            for_assessor,
            for_desk,
            for_dm,
        ), today


def test_a_done_missed_or_withdrawn_visit_reminds_nobody(danish, staff, post_visit):
    today = post_visit.window_end + datetime.timedelta(days=1)
    Visit.objects.exclude(pk=post_visit.pk).update(missed=True)
    Participant.objects.filter(pk=post_visit.participant_id).update(status="withdrawn")
    assert reminders.queue_reminders(today) == 0


def test_window_dates_do_not_move_across_the_daylight_saving_change(danish, coordinator):
    """Windows are dates, anchored on the local randomization date: the night the clocks go
    back (25 October 2026 in Copenhagen) shifts nothing."""
    from assessments.services import visit_dates

    p = make_ready_participant(danish, coordinator)
    Participant.objects.filter(pk=p.pk).update(randomized_on=datetime.date(2026, 10, 24))
    p.refresh_from_db()
    post = danish.timepoints.get(code="post")
    target, start, end = visit_dates(post, p)
    assert target == datetime.date(2026, 10, 24) + datetime.timedelta(days=274)
    assert (end - start).days == 60


def test_the_local_date_decides_the_day_not_utc(settings):
    from django.utils import timezone

    settings.TIME_ZONE = "Europe/Copenhagen"
    late_utc = datetime.datetime(2026, 3, 28, 23, 30, tzinfo=datetime.UTC)
    assert timezone.localdate(late_utc) == datetime.date(2026, 3, 29)


def test_each_role_gets_one_digest_with_its_own_lines(danish, staff, post_visit):
    Visit.objects.exclude(pk=post_visit.pk).update(missed=True)
    today = post_visit.window_end + datetime.timedelta(days=danish.escalation_after_days)
    result = reminders.run_daily(today)
    # Two coordinators (one has no e-mail address: kept pending, with the reason) and one
    # data manager.
    assert result == {"queued": 3, "sent": 2, "failed": 0}
    assert Reminder.objects.get(sent_at__isnull=True).last_error == (
        "The recipient has no e-mail address."
    )
    by_to = {m.to[0]: m.body for m in mail.outbox}
    assert set(by_to) == {"coordinator@example.org", "data_manager@example.org"}
    pid = post_visit.participant.participant_id
    assert "Visit overdue:" in by_to["coordinator@example.org"]
    assert pid in by_to["coordinator@example.org"]
    assert "escalated" in by_to["data_manager@example.org"]


def test_running_the_job_twice_sends_nothing_twice(danish, staff, post_visit):
    today = post_visit.window_start
    reminders.run_daily(today)
    first = len(mail.outbox)
    assert first >= 1
    assert reminders.run_daily(today) == {"queued": 0, "sent": 0, "failed": 0}
    assert len(mail.outbox) == first


def test_a_mail_outage_loses_nothing_and_shows_on_the_reminders_page(
    danish, staff, post_visit, settings, client
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    today = post_visit.window_start
    result = reminders.run_daily(today)
    assert result["sent"] == 0 and result["failed"] >= 1
    pending = Reminder.objects.filter(sent_at__isnull=True)
    assert pending.exists() and all(r.attempts == 1 and r.last_error for r in pending)
    client.force_login(staff[Role.COORDINATOR])
    from django.urls import reverse

    page = client.get(reverse("assessments:reminders", args=[danish.key])).content.decode()
    assert "could not be sent yet" in page
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sent, failed = reminders.send_pending()
    assert sent == len(mail.outbox) >= 1 and failed == 0
    assert not Reminder.objects.filter(sent_at__isnull=True, recipient__email__gt="").exists()


def test_reminders_read_the_same_whatever_the_arm(danish, coordinator, staff):
    from assessments.services import schedule_visits

    made = {}
    while set(made) != {"imr", "tau"}:
        p = make_ready_participant(danish, coordinator)
        allocation = randomization.randomize(p, by=coordinator)
        made.setdefault(allocation.arm.code, p.participant_id)
    schedule_visits(danish)
    today = Visit.objects.filter(timepoint__code="post").first().window_start
    Visit.objects.exclude(timepoint__code="post").update(missed=True)
    reminders.run_daily(today)
    (digest,) = [m.body for m in mail.outbox if m.to == ["assessor@example.org"]]
    lines = sorted(line for line in digest.splitlines() if line.strip().startswith("- "))
    imr_line = next(line for line in lines if made["imr"] in line)
    tau_line = next(line for line in lines if made["tau"] in line)
    assert imr_line.replace(made["imr"], "P") == tau_line.replace(made["tau"], "P")
    assert "IMR" not in digest.replace("imrtrial", "") and "group" not in digest.lower()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_senders_at_once_send_each_digest_once(roles_restored):
    from django.db import connection

    from tests.factories import load_preset

    trial = load_preset("danish", key="danish-senders")
    desk = make_user("desk-s")
    grant(desk, trial, Role.COORDINATOR)
    for n in range(12):
        user = make_user(f"a{n}", email=f"a{n}@example.org")
        grant(user, trial, Role.ASSESSOR)
    p = make_ready_participant(trial, desk, baseline=False)
    from assessments.services import schedule_visits

    schedule_visits(trial)
    reminders.queue_reminders(p.visits.get(timepoint__code="baseline").window_start)
    barrier = threading.Barrier(2)

    def sender():
        barrier.wait()
        try:
            reminders.send_pending()
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recipients = [m.to[0] for m in mail.outbox]
    assert len(recipients) == 12 and len(set(recipients)) == 12
    assert not Reminder.objects.filter(sent_at__isnull=True).exists()
    Trial.objects.filter(pk=trial.pk).update(status="closed")
