"""The IMR pages through the test client: a facilitator's week, a member added, two raters."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from fidelity import services
from fidelity.models import Attendance, FidelityRating, GroupMembership, Session
from imrtrial.models import AccessLog, Role

from .conftest import START, log, randomized

pytestmark = pytest.mark.urls("tests.fidelity.urls")


def url(name, *args):
    return reverse(f"fidelity:{name}", args=args)


@pytest.fixture
def members(danish, site_a, group, facilitators):
    people = [randomized(danish, site_a, "imr", pid=f"DK-{i:02d}") for i in range(1, 11)]
    for p in people:
        services.add_member(group, p, by=facilitators[0], joined_on=START)
    return people


def session_post(group, members, **overrides):
    data = {
        "date": timezone.localdate().isoformat(),
        "modules": ["coping_stress"],
        "duration_minutes": "60",
        "facilitators_present": [str(u.pk) for u in group.facilitators.all()],
        "notes": "",
    }
    data.update({f"status_{p.pk}": "attended" for p in members})
    data.update(overrides)
    return data


def test_the_session_form_starts_with_every_member_attended(client, danish, group, members):
    client.force_login(group.facilitators.first())
    page = client.get(url("session_new", danish.key, group.pk)).content.decode()
    assert len(re.findall(r'value="attended"[^>]*checked', page)) == 10
    assert page.count('name="facilitators_present"') == 2
    assert f'value="{timezone.localdate().isoformat()}"' in page


def test_a_facilitator_logs_a_week_for_ten_members_in_one_post(client, danish, group, members):
    client.force_login(group.facilitators.first())
    data = session_post(group, members, **{f"status_{members[3].pk}": "absent"})
    response = client.post(url("session_new", danish.key, group.pk), data, follow=True)
    assert b"9 of 10 members attended" in response.content
    session = Session.objects.get()
    assert session.attendance.count() == 10
    assert session.attendance.get(participant=members[3]).status == Attendance.Status.ABSENT
    assert 'data-present="9"' in response.content.decode()  # the bar of the SVG chart


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2099-01-01", "A session cannot be logged for a future date."),
        ("2026-01-04", "starts on 2026-01-05; no session before that."),
    ],
)
def test_a_bad_session_date_is_refused_and_nothing_is_saved(
    client, danish, group, members, date, message
):
    client.force_login(group.facilitators.first())
    page = client.post(
        url("session_new", danish.key, group.pk), session_post(group, members, date=date)
    ).content.decode()
    assert message in page and "Nothing was saved." in page
    assert not Session.objects.exists() and not Attendance.objects.exists()


def test_a_duplicate_session_date_is_refused(client, danish, group, members):
    client.force_login(group.facilitators.first())
    log(group, START, dict.fromkeys(members, "attended"), by=group.facilitators.first())
    page = client.post(
        url("session_new", danish.key, group.pk), session_post(group, members, date="2026-01-05")
    ).content.decode()
    assert "A session on 2026-01-05 is already logged" in page
    assert Session.objects.count() == 1


def test_the_group_page_shows_exposure_and_module_coverage_and_is_logged(
    client, danish, group, members, facilitators
):
    by = facilitators[0]
    log(group, START, dict.fromkeys(members, "attended"), by=by, modules=["medication"])
    client.force_login(by)
    page = client.get(url("group", danish.key, group.pk)).content.decode()
    assert "DK-01" in page and "Exposed (≥11)" in page and "Completer" not in page
    assert "Using medication effectively</td><td>1</td>" in page
    assert "<svg" in page and "style=" not in page  # the CSP forbids inline styles
    assert AccessLog.objects.get(user=by).action == AccessLog.Action.VIEW_ALLOCATION


def test_adding_a_control_participant_is_refused_with_a_clear_message(
    client, danish, site_a, group, facilitators
):
    randomized(danish, site_a, "tau", pid="DK-TAU")
    imr = randomized(danish, site_a, "imr", pid="DK-IMR")
    client.force_login(facilitators[0])
    add = url("member_add", danish.key, group.pk)
    page = client.get(add).content.decode()
    assert '<option value="DK-IMR">' in page and "DK-TAU" not in page  # the suggestions
    page = client.post(add, {"participant_id": "DK-TAU", "joined_on": "2026-01-05"})
    assert "DK-TAU was randomized to TAU" in page.content.decode()
    assert not GroupMembership.objects.exists()
    response = client.post(add, {"participant_id": "DK-IMR", "joined_on": "2026-01-05"})
    assert response.status_code == 302 and GroupMembership.objects.get().participant == imr


def test_a_coordinator_may_read_the_group_but_not_log_sessions(client, danish, group, coordinator):
    client.force_login(coordinator)
    page = client.get(url("group", danish.key, group.pk)).content.decode()
    assert "Log a session" not in page
    assert client.get(url("session_new", danish.key, group.pk)).status_code == 404


def rating_post(values, **extra):
    return {**{f"item_{i}": str(v) for i, v in enumerate(values, start=1)}, **extra}


def test_two_raters_rate_blind_to_each_other_then_agree(client, danish, group, raters):
    r1, r2 = raters
    end = services.create_assessment(
        group, by=r1, kind="end", date=START, data_sources=["interviews"]
    )
    page_url = url("assessment", danish.key, group.pk, end.pk)
    client.force_login(r1)
    response = client.post(page_url, rating_post([3] * 12 + [2], rate="1"))
    assert response.status_code == 302
    client.force_login(r2)
    page = client.get(page_url).content.decode()
    assert "1 of 2 submitted" in page and "rater1" not in page  # r1's scores stay hidden
    page = client.post(page_url, rating_post([4] * 13, consensus="1")).content.decode()
    assert "The consensus comes after both raw ratings; 1 of 2 are in." in page
    client.post(page_url, rating_post([5] * 13, rate="1"))
    page = client.get(page_url).content.decode()
    assert "Rater 1 (rater1)" in page and "Consensus rating" in page
    client.post(page_url, rating_post([4] * 13, consensus="1", report="Agreed."))
    report = client.get(url("report", danish.key, group.pk)).content.decode()
    assert re.search(r'data-testid="score">4\.00<.*data-testid="band">good<', report, re.S)
    assert "(3, 5)" in report and "(2, 5)" in report  # raw scores beside the consensus
    assert FidelityRating.objects.count() == 3


def test_a_rating_out_of_range_is_refused_and_nothing_is_saved(client, danish, group, raters):
    r1, _ = raters
    midway = services.create_assessment(
        group, by=r1, kind="midway", date=START, data_sources=["observation"]
    )
    client.force_login(r1)
    page = client.post(
        url("assessment", danish.key, group.pk, midway.pk),
        rating_post([4, 4, 7, 4, 4, 4, 4, 4, 4, 4], rate="1"),
    ).content.decode()
    assert "Rate this item from 1 to 5." in page
    assert "13. Behavioral tailoring" not in page  # a mid-way rating has items 1-10 only
    assert not FidelityRating.objects.exists()


def test_a_rater_from_the_groups_own_site_is_told_why_not(client, danish, site_a, group, person):
    local = person(Role.FIDELITY_RATER, None, "local")
    from tests.factories import grant

    grant(local, danish, Role.FACILITATOR, site_a)
    client.force_login(local)
    page = client.post(
        url("assessment_new", danish.key, group.pk),
        {"kind": "end", "date": "2026-06-01", "data_sources": ["interviews"]},
    ).content.decode()
    assert "You hold a role at CMHC Frederiksberg-Vanløse" in page


def test_a_facilitator_creates_a_group_with_two_colleagues(client, danish, site_a, facilitators):
    client.force_login(facilitators[0])
    response = client.post(
        url("group_new", danish.key),
        {
            "name": "Thursday group",
            "site": site_a.pk,
            "facilitators": [u.pk for u in facilitators],
            "start_date": "2026-02-05",
            "planned_sessions": "36",
            "schedule": "Thursdays 13:00",
            "session_minutes": "60",
            "enrolment": "closed",
            "capacity": "10",
        },
    )
    group = danish.imr_groups.get(name="Thursday group")
    assert response.status_code == 302 and set(group.facilitators.all()) == set(facilitators)
    assert group.history.first().history_user == facilitators[0]


def test_a_facilitator_changes_attendance_to_catch_up_and_records_a_call(
    client, danish, group, imr_member, facilitators
):
    by = facilitators[0]
    session = log(group, START, {imr_member: "absent"}, by=by)
    client.force_login(by)
    page_url = url("session", danish.key, group.pk, session.pk)
    client.post(
        page_url,
        {
            "participant": imr_member.pk,
            "called_on": "2026-01-06",
            "call": "1",
            "outcome": "In hospital; will visit on the ward",
        },
    )
    client.post(
        page_url,
        {
            "participant": imr_member.pk,
            "status": "catch_up",
            "change": "1",
            "reason": "Module given on the ward",
        },
    )
    row = session.attendance.get()
    assert row.status == "catch_up"
    assert row.history.first().history_change_reason == "Module given on the ward"
    assert session.follow_up_calls.get().outcome == "In hospital; will visit on the ward"
    page = client.post(
        page_url, {"participant": imr_member.pk, "status": "absent", "change": "1"}, follow=True
    ).content.decode()
    assert "Choose the new status and give the reason." in page
    assert session.attendance.get().status == "catch_up"


def test_a_member_leaves_the_group(client, danish, group, imr_member, facilitators):
    client.force_login(facilitators[0])
    membership = imr_member.imr_memberships.get()
    leave = url("member_leave", danish.key, group.pk, membership.pk)
    assert client.get(leave).status_code == 405
    client.post(leave, {"left_on": "2026-02-01", "reason": "Moved away"})
    membership.refresh_from_db()
    assert membership.left_on.isoformat() == "2026-02-01"
