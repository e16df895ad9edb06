"""Facilitators hear of weekly sessions they have not logged; exactly once; only they do."""

import datetime

import pytest
from django.core import mail
from django.core.management import call_command

from fidelity import reminders
from fidelity.models import AttendanceReminder
from imrtrial.models import Role

from .conftest import START, log, weekly

pytestmark = pytest.mark.django_db
D = datetime.date


@pytest.fixture
def with_emails(facilitators):
    for n, user in enumerate(facilitators):
        user.email = f"fac{n}@example.org"
        user.save(update_fields=["email"])
    return facilitators


def test_unlogged_weekly_sessions_are_found_after_the_grace_days(group, imr_member, with_emails):
    first, second, third, fourth = weekly(4)
    log(group, first, {imr_member: "attended"}, by=with_emails[0])
    log(group, third, {imr_member: "attended"}, by=with_emails[0])
    after = group.trial.attendance_reminder_after_days
    # The fourth session is only `after - 1` days old: not yet a reminder.
    today = fourth + datetime.timedelta(days=after - 1)
    assert reminders.queue_attendance_reminders(today) == 2  # second, for two facilitators
    assert set(AttendanceReminder.objects.values_list("expected_on", flat=True)) == {second}
    assert reminders.queue_attendance_reminders(today + datetime.timedelta(days=1)) == 4


def test_each_facilitator_gets_one_digest_and_a_second_run_sends_nothing(
    group, with_emails, danish, person
):
    person(Role.ASSESSOR, None, "blind-assessor").email = "a@example.org"
    today = START + datetime.timedelta(weeks=1, days=4)
    result = reminders.run_daily(today)
    assert result["sent"] == 2 and result["failed"] == 0
    assert sorted(m.to[0] for m in mail.outbox) == ["fac0@example.org", "fac1@example.org"]
    assert group.name in mail.outbox[0].body and f"{START:%Y-%m-%d}" in mail.outbox[0].body
    assert reminders.run_daily(today) == {"queued": 0, "sent": 0, "failed": 0}
    assert len(mail.outbox) == 2


def test_the_command_runs_both_reminder_jobs(group, with_emails, capsys):
    call_command("send_reminders", "--date", f"{START + datetime.timedelta(days=10):%Y-%m-%d}")
    out = capsys.readouterr().out
    assert "Visit reminders:" in out and "Attendance reminders: queued 4" in out


def test_a_closed_or_unstarted_group_reminds_nobody(group, with_emails):
    assert reminders.queue_attendance_reminders(START - datetime.timedelta(days=1)) == 0
    group.trial.status = "closed"
    group.trial.save(update_fields=["status"])
    assert reminders.queue_attendance_reminders(START + datetime.timedelta(weeks=2)) == 0


def test_the_coordinator_sees_attendance_reminders_and_their_failures_on_the_groups_page(
    client, group, with_emails, danish, settings, person
):
    from django.urls import reverse

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    reminders.run_daily(START + datetime.timedelta(days=5))
    client.force_login(person(Role.COORDINATOR, None, "desk-ar"))
    page = client.get(reverse("fidelity:groups", args=[danish.key])).content.decode()
    assert "could not be sent yet" in page and group.name in page
    client.force_login(person(Role.DATA_MANAGER, None, "dm-ar"))
    assert client.get(reverse("fidelity:groups", args=[danish.key])).status_code == 404


# --- The gate at send time ----------------------------------------------------------------------


def withdraw(user, trial, role, *, now_holds=None, site=None):
    """The trial administrator withdraws a role (the membership stays, inactive), and perhaps
    gives the person another one."""
    from imrtrial.models import Membership
    from tests.factories import grant

    Membership.objects.filter(user=user, trial=trial, role=role).update(active=False)
    if now_holds:
        grant(user, trial, now_holds, site)


def test_a_facilitator_withdrawn_between_queue_and_send_gets_no_digest_naming_the_group(
    group, with_emails, danish, site_a
):
    today = START + datetime.timedelta(weeks=1, days=4)
    assert reminders.queue_attendance_reminders(today) == 4
    gone, stays = with_emails
    withdraw(gone, danish, Role.FACILITATOR, now_holds=Role.ASSESSOR, site=site_a)
    assert reminders.send_pending() == (1, 0)
    assert [m.to for m in mail.outbox] == [[stays.email]]
    # The lines are kept, marked as dropped with the reason, and never tried again.
    dropped = AttendanceReminder.objects.filter(recipient=gone)
    assert dropped.count() == 2
    for line in dropped:
        assert line.sent_at is None and line.dropped_at is not None
        assert "no longer" in line.last_error
    assert reminders.send_pending() == (0, 0)
    assert len(mail.outbox) == 1


def test_a_facilitator_withdrawn_before_the_daily_job_gets_no_line_and_no_mail(
    group, with_emails, danish
):
    gone, stays = with_emails
    withdraw(gone, danish, Role.FACILITATOR)
    result = reminders.run_daily(START + datetime.timedelta(weeks=1, days=4))
    assert result == {"queued": 2, "sent": 1, "failed": 0}
    assert not AttendanceReminder.objects.filter(recipient=gone).exists()
    assert [m.to for m in mail.outbox] == [[stays.email]]


def test_a_facilitator_moved_to_another_site_hears_nothing_more_of_the_old_group(
    group, with_emails, danish, site_b
):
    today = START + datetime.timedelta(weeks=1, days=4)
    reminders.queue_attendance_reminders(today)
    moved, stays = with_emails
    withdraw(moved, danish, Role.FACILITATOR, now_holds=Role.FACILITATOR, site=site_b)
    reminders.send_pending()
    assert [m.to for m in mail.outbox] == [[stays.email]]
