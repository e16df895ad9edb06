"""Groups, members, sessions and attendance through fidelity.services."""

import datetime

import pytest

from fidelity import services
from fidelity.models import Attendance, GroupMembership, ImrGroup, Session
from imrtrial.errors import Refused
from imrtrial.models import HardDeleteForbidden, Role
from tests.factories import make_participant

from .conftest import START, D, log, make_group, randomized, weekly

A = Attendance.Status


def test_a_group_needs_two_or_three_facilitators_of_its_site(
    danish, site_a, site_b, facilitators, person
):
    with pytest.raises(Refused, match="two or three facilitators"):
        make_group(danish, site_a, facilitators[:1])
    elsewhere = person(Role.FACILITATOR, site_b, "fac-b")
    with pytest.raises(Refused, match="fac-b is not an IMR facilitator at CMHC Frederiksberg"):
        make_group(danish, site_a, [*facilitators, elsewhere])
    group = make_group(danish, site_a, facilitators)
    assert set(group.facilitators.all()) == set(facilitators)
    assert ImrGroup.objects.count() == 1


def test_a_blinded_user_cannot_create_a_group(danish, site_a, facilitators, person):
    assessor = person(Role.ASSESSOR, site_a)
    with pytest.raises(Refused, match="You may not log IMR attendance"):
        services.create_group(
            danish,
            site_a,
            by=assessor,
            name="X",
            facilitators=facilitators,
            start_date=START,
            planned_sessions=36,
            capacity=10,
        )
    assert not ImrGroup.objects.exists()


def test_only_participants_randomized_to_imr_at_the_site_may_join(
    danish, site_a, site_b, group, facilitators
):
    by = facilitators[0]
    control = randomized(danish, site_a, "tau", pid="DK-TAU")
    with pytest.raises(Refused, match="DK-TAU was randomized to TAU: only participants"):
        services.add_member(group, control, by=by, joined_on=START)
    waiting = make_participant(danish, site=site_a, participant_id="DK-WAIT")
    with pytest.raises(Refused, match="DK-WAIT has not been randomized"):
        services.add_member(group, waiting, by=by, joined_on=START)
    other_site = randomized(danish, site_b, "imr", pid="DK-B")
    with pytest.raises(Refused, match="DK-B belongs to CMHC Ballerup-Egedal-Herlev; this group"):
        services.add_member(group, other_site, by=by, joined_on=START)
    assert not GroupMembership.objects.exists()
    imr = randomized(danish, site_a, "imr", pid="DK-IMR")
    services.add_member(group, imr, by=by, joined_on=START)
    assert GroupMembership.objects.get().participant == imr


def test_capacity_closed_enrolment_and_one_group_at_a_time(danish, site_a, facilitators):
    by = facilitators[0]
    small = make_group(danish, site_a, facilitators, name="Small", capacity=2)
    other = make_group(danish, site_a, facilitators, name="Other")
    p1, p2, p3 = (randomized(danish, site_a, "imr") for _ in range(3))
    services.add_member(small, p1, by=by, joined_on=START)
    services.add_member(small, p2, by=by, joined_on=START)
    with pytest.raises(Refused, match="Small is full: its capacity is 2."):
        services.add_member(small, p3, by=by, joined_on=START)
    with pytest.raises(Refused, match="closed enrolment: members join by its start date"):
        services.add_member(other, p3, by=by, joined_on=START + datetime.timedelta(days=1))
    with pytest.raises(Refused, match="is already a member of Small"):
        services.add_member(other, p1, by=by, joined_on=START)
    services.leave_group(small.memberships.get(participant=p1), by=by, left_on=START)
    services.add_member(other, p1, by=by, joined_on=START)
    assert GroupMembership.objects.count() == 3


def test_a_member_cannot_join_before_randomization_or_in_the_future(danish, site_a, facilitators):
    rolling = make_group(
        danish, site_a, facilitators, enrolment=ImrGroup.Enrolment.ROLLING, name="Rolling"
    )
    late = randomized(danish, site_a, "imr", randomized_on=D(2026, 2, 1), pid="DK-LATE")
    with pytest.raises(Refused, match="randomized on 2026-02-01"):
        services.add_member(rolling, late, by=facilitators[0], joined_on=D(2026, 1, 20))
    with pytest.raises(Refused, match="cannot be in the future"):
        services.add_member(rolling, late, by=facilitators[0], joined_on=D(2099, 1, 1))
    services.add_member(rolling, late, by=facilitators[0], joined_on=D(2026, 2, 2))


def test_a_session_logs_every_members_attendance(danish, site_a, group, facilitators):
    by = facilitators[0]
    members = [randomized(danish, site_a, "imr") for _ in range(3)]
    for p in members:
        services.add_member(group, p, by=by, joined_on=START)
    session = log(
        group,
        START,
        {members[0]: A.ATTENDED, members[1]: A.ABSENT, members[2]: A.CATCH_UP},
        by=by,
        modules=["practical_facts", "recovery_strategies"],
        facilitators_present=facilitators,
        notes="First session",
    )
    assert session.modules == ["recovery_strategies", "practical_facts"]  # curriculum order
    assert set(session.facilitators_present.all()) == set(facilitators)
    assert sorted(session.attendance.values_list("status", flat=True)) == [
        "absent",
        "attended",
        "catch_up",
    ]
    assert session.history.first().history_user == by


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (datetime.date(2099, 1, 1), "A session cannot be logged for a future date."),
        (START - datetime.timedelta(days=1), "starts on 2026-01-05; no session before that."),
    ],
)
def test_sessions_in_the_future_or_before_the_start_are_refused(
    day, message, group, imr_member, facilitators
):
    with pytest.raises(Refused, match=message):
        log(group, day, {imr_member: A.ATTENDED}, by=facilitators[0])
    assert not Session.objects.exists() and not Attendance.objects.exists()


def test_a_second_session_on_the_same_date_is_refused(group, imr_member, facilitators):
    log(group, START, {imr_member: A.ATTENDED}, by=facilitators[0])
    with pytest.raises(Refused, match="A session on 2026-01-05 is already logged"):
        log(group, START, {imr_member: A.ABSENT}, by=facilitators[0])
    assert Session.objects.count() == 1 and Attendance.objects.get().status == A.ATTENDED


def test_attendance_for_a_non_member_or_a_control_participant_is_refused(
    danish, site_a, group, imr_member, facilitators
):
    by = facilitators[0]
    control = randomized(danish, site_a, "tau", pid="DK-TAU")
    outsider = randomized(danish, site_a, "imr", pid="DK-OUT")
    for stranger in (control, outsider):
        with pytest.raises(Refused, match=f"Not a member of .* on 2026-01-05: {stranger}\\."):
            log(group, START, {imr_member: A.ATTENDED, stranger: A.ATTENDED}, by=by)
    assert not Session.objects.exists() and not Attendance.objects.exists()


def test_every_member_needs_a_status_and_only_group_facilitators_are_present(
    danish, site_a, group, imr_member, facilitators, person
):
    by = facilitators[0]
    second = randomized(danish, site_a, "imr", pid="DK-IMR-2")
    services.add_member(group, second, by=by, joined_on=START)
    with pytest.raises(Refused, match="missing: DK-IMR-2"):
        log(group, START, {imr_member: A.ATTENDED}, by=by)
    stranger = person(Role.FACILITATOR, site_a, "not-in-group")
    with pytest.raises(Refused, match="Not a facilitator of .*: not-in-group"):
        log(
            group,
            START,
            {imr_member: A.ATTENDED, second: A.ATTENDED},
            by=by,
            facilitators_present=[stranger],
        )
    with pytest.raises(Refused, match="Choose the module"):
        log(group, START, {imr_member: A.ATTENDED, second: A.ATTENDED}, by=by, modules=[])
    assert not Session.objects.exists()


def test_a_member_who_left_is_not_on_later_sessions(group, imr_member, facilitators):
    by = facilitators[0]
    first, second, third = weekly(3)
    log(group, first, {imr_member: A.ATTENDED}, by=by)
    log(group, second, {imr_member: A.ATTENDED}, by=by)
    membership = imr_member.imr_memberships.get()
    with pytest.raises(Refused, match="attendance recorded after 2026-01-05"):
        services.leave_group(membership, by=by, left_on=first)
    with pytest.raises(Refused, match="cannot leave before"):
        services.leave_group(membership, by=by, left_on=D(2026, 1, 4))
    services.leave_group(membership, by=by, left_on=second, reason="moved away")
    with pytest.raises(Refused, match="Not a member"):
        log(group, third, {imr_member: A.ATTENDED}, by=by)
    assert log(group, third, {}, by=by).attendance.count() == 0


def test_attendance_is_changed_with_a_reason_and_the_history_keeps_it(
    group, imr_member, facilitators
):
    by = facilitators[0]
    session = log(group, START, {imr_member: A.ABSENT}, by=by)
    with pytest.raises(Refused, match="Give the reason"):
        services.record_attendance(session, imr_member, by=by, status=A.CATCH_UP, reason=" ")
    services.record_attendance(
        session, imr_member, by=by, status=A.CATCH_UP, reason="session given on the ward"
    )
    row = Attendance.objects.get()
    assert row.status == A.CATCH_UP
    assert row.history.first().history_change_reason == "session given on the ward"


def test_a_follow_up_call_is_for_a_member_who_missed_the_session(group, imr_member, facilitators):
    by = facilitators[0]
    session = log(group, START, {imr_member: A.ATTENDED}, by=by)
    with pytest.raises(Refused, match="did not miss this session"):
        services.record_follow_up_call(
            session, imr_member, by=by, called_on=START, outcome="Will come next week"
        )
    services.record_attendance(session, imr_member, by=by, status=A.ABSENT, reason="typo")
    call = services.record_follow_up_call(
        session, imr_member, by=by, called_on=START, outcome="Will come next week"
    )
    assert call.called_by == by


def test_imr_rows_are_never_deleted(group, imr_member, facilitators):
    session = log(group, START, {imr_member: A.ATTENDED}, by=facilitators[0])
    for obj in (group, session, session.attendance.get(), imr_member.imr_memberships.get()):
        with pytest.raises(HardDeleteForbidden):
            obj.delete()
    with pytest.raises(HardDeleteForbidden):
        Attendance.objects.all().delete()
