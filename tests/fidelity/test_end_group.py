"""An IMR group that stops before its planned sessions: ended with a date and a reason, then no
sessions, members or reminders after it, and exposure computed on what it held."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from fidelity import measures, reminders, services
from fidelity.models import AttendanceReminder, GroupMembership, ImrGroup, Session
from imrtrial.models import Role
from tests.factories import make_person

from .conftest import START, log, make_group, randomized, weekly

pytestmark = pytest.mark.django_db
WEEK = datetime.timedelta(weeks=1)


@pytest.fixture
def twelve_sessions(group, imr_member, facilitators):
    """The Danish group that stopped after 12 sessions; its member came to 10."""
    days = weekly(12)
    for n, day in enumerate(days):
        log(group, day, {imr_member: "attended" if n < 10 else "absent"}, by=facilitators[0])
    return days


def test_an_ended_group_stops_reminding_and_refuses_later_sessions_and_members(
    group, imr_member, facilitators, twelve_sessions, danish, site_a
):
    for n, user in enumerate(facilitators):
        user.email = f"fac{n}@example.org"
        user.save(update_fields=["email"])
    last = twelve_sessions[-1]
    services.end_group(group, by=facilitators[1], on=last, reason="Too few members came")

    group.refresh_from_db()
    assert (group.ended_on, group.ended_reason) == (last, "Too few members came")
    membership = GroupMembership.objects.get(group=group, participant=imr_member)
    assert membership.left_on == last
    record = group.history.first()
    assert (record.history_user, record.history_change_reason) == (
        facilitators[1],
        "Too few members came",
    )
    # Weeks 13 and 14 would have been reminders: the group planned 36.
    today = last + 2 * WEEK + datetime.timedelta(days=group.trial.attendance_reminder_after_days)
    assert reminders.queue_attendance_reminders(today) == 0
    assert not AttendanceReminder.objects.exists()
    with pytest.raises(services.Refused, match="ended on"):
        log(group, last + WEEK, {}, by=facilitators[0])
    newcomer = randomized(danish, site_a, "imr", pid="DK-LATE")
    with pytest.raises(services.Refused, match="no one joins it now"):
        services.add_member(group, newcomer, by=facilitators[0], joined_on=last)
    assert Session.objects.filter(group=group).count() == 12


def test_exposure_of_an_ended_group_is_of_the_sessions_it_held(
    dutch, group, imr_member, facilitators, twelve_sessions
):
    # Danish rules: the share of held is unchanged; the group's plan becomes what it held.
    services.end_group(group, by=facilitators[0], on=twelve_sessions[-1], reason="stopped")
    e = measures.exposure(imr_member)
    assert (e.attended, e.held, e.planned) == (10, 12, 12)
    assert e.exposed is False  # 10 sessions: not exposed (>= 11)
    # Dutch rules (denominator: planned): 7 of the 12 a group held before ending is a
    # completer; of its 53 planned it would not be.
    site = dutch.sites.get(code="team-01")
    fac = [make_person(dutch, Role.FACILITATOR, site, f"nl-fac{i}") for i in (1, 2)]
    nl = make_group(dutch, site, fac, name="Rotterdam", planned_sessions=53)
    member = randomized(dutch, site, "imr", pid="NL-1")
    services.add_member(nl, member, by=fac[0], joined_on=START)
    for n, day in enumerate(weekly(12)):
        log(nl, day, {member: "attended" if n < 7 else "absent"}, by=fac[0])
    assert measures.exposure(member).completer is False
    services.end_group(nl, by=fac[0], on=weekly(12)[-1], reason="the trainers left")
    assert measures.exposure(member).completer is True


@pytest.mark.parametrize(
    ("on", "reason", "message"),
    [
        (lambda days: days[-1], "  ", "Give the reason"),
        (lambda days: days[-1], "x" * 301, "300 characters"),
        (lambda days: timezone.localdate() + WEEK, "stop", "future date"),
        (lambda days: START - WEEK, "stop", "cannot end before"),
        (lambda days: days[5], "stop", "is logged on"),
    ],
)
def test_a_bad_end_is_refused_and_nothing_changes(
    group, facilitators, twelve_sessions, on, reason, message
):
    versions = group.history.count()
    with pytest.raises(services.Refused, match=message):
        services.end_group(group, by=facilitators[0], on=on(twelve_sessions), reason=reason)
    group.refresh_from_db()
    assert group.ended_on is None and group.history.count() == versions
    assert not GroupMembership.objects.filter(left_on__isnull=False).exists()


def test_a_group_ends_once_and_only_its_facilitators_site_may_end_it(
    group, facilitators, twelve_sessions, person, site_b
):
    other_site = person(Role.FACILITATOR, site_b, "fac-b")
    with pytest.raises(services.Refused, match="may not"):
        services.end_group(group, by=other_site, on=twelve_sessions[-1], reason="stop")
    services.end_group(group, by=facilitators[0], on=twelve_sessions[-1], reason="stop")
    with pytest.raises(services.Refused, match="already ended"):
        services.end_group(group, by=facilitators[0], on=twelve_sessions[-1], reason="again")


@pytest.mark.urls("tests.fidelity.urls")
def test_the_group_page_ends_it_and_says_so_and_a_blinded_user_gets_404(
    client, group, facilitators, twelve_sessions, person
):
    end = reverse("fidelity:group_end", args=[group.trial.key, group.pk])
    page = reverse("fidelity:group", args=[group.trial.key, group.pk])
    assessor = person(Role.ASSESSOR, None, "blind")
    client.force_login(assessor)
    assert (
        client.post(end, {"ended_on": f"{twelve_sessions[-1]}", "reason": "x"}).status_code == 404
    )
    assert client.get(end).status_code == 404
    client.force_login(facilitators[0])
    assert client.get(end).status_code == 405
    html = client.get(page).content.decode()
    assert "End the group early" in html
    response = client.post(end, {"ended_on": "", "reason": "stopped"}, follow=True)
    assert "Give the group&#x27;s last day" in response.content.decode()
    assert ImrGroup.objects.get(pk=group.pk).ended_on is None
    response = client.post(
        end, {"ended_on": f"{twelve_sessions[-1]}", "reason": "Only one member left"}, follow=True
    )
    html = response.content.decode()
    assert "no more reminders" in html
    assert "Only one member left" in html and "End the group early" not in html


def test_reminders_queued_before_the_end_for_weeks_after_it_are_dropped(
    group, imr_member, facilitators, twelve_sessions
):
    for n, user in enumerate(facilitators):
        user.email = f"fac{n}@example.org"
        user.save(update_fields=["email"])
    last = twelve_sessions[-1]
    after = group.trial.attendance_reminder_after_days
    today = last + 2 * WEEK + datetime.timedelta(days=after)
    assert reminders.queue_attendance_reminders(today) == 4  # weeks 13 and 14, two facilitators
    services.end_group(group, by=facilitators[0], on=last, reason="stopped after 12")
    lines = AttendanceReminder.objects.all()
    assert lines.count() == 4 and all(line.dropped_at for line in lines)
    assert {line.last_error for line in lines} == {"the group ended early"}
    assert reminders.send_pending() == (0, 0)
