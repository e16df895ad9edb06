"""Exposure and completion, computed from attendance: hand-worked cases for both trials."""

from fractions import Fraction

import pytest

from fidelity import measures, rules, services
from fidelity.models import Attendance, ImrGroup, Module
from imrtrial.models import Role
from tests.factories import make_person

from .conftest import START, D, log, make_group, randomized, weekly

A = Attendance.Status


@pytest.fixture
def danish_group(danish, site_a, facilitators):
    """14 weekly sessions from 2026-01-05, two per module in curriculum order. Members
    randomized on 2025-12-01:
      A: absent at 1, attended 2-11, catch-up at 12, excused 13, absent 14 -> 11 attended
      B: attended 1-10, absent 11-14 -> 10 attended
      C: attended 1-9, absent 10-14 -> 9 attended
    """
    by = facilitators[0]
    group = make_group(danish, site_a, facilitators, planned_sessions=36)
    a, b, c = (randomized(danish, site_a, "imr", pid=f"DK-{x}") for x in "ABC")
    for p in (a, b, c):
        services.add_member(group, p, by=by, joined_on=START)
    statuses = {
        a: [A.ABSENT] + [A.ATTENDED] * 10 + [A.CATCH_UP, A.EXCUSED, A.ABSENT],
        b: [A.ATTENDED] * 10 + [A.ABSENT] * 4,
        c: [A.ATTENDED] * 9 + [A.ABSENT] * 5,
    }
    for i, day in enumerate(weekly(14)):
        module = Module.values[i // 2]
        log(group, day, {p: s[i] for p, s in statuses.items()}, by=by, modules=[module])
    return group, a, b, c


def test_danish_exposure_counts_catch_up_as_attended_and_starts_at_eleven(danish_group):
    group, a, b, c = danish_group
    e = measures.exposures([a, b, c])
    assert (e[a.pk].attended, e[b.pk].attended, e[c.pk].attended) == (11, 10, 9)
    assert (e[a.pk].exposed, e[b.pk].exposed, e[c.pk].exposed) == (True, False, False)
    assert [e[p.pk].fidelity_eligible for p in (a, b, c)] == [True, True, False]
    assert e[a.pk].completer is None  # the Danish trial defines exposure, not completion


def test_danish_shares_of_held_and_of_planned_sessions(danish_group):
    _, a, b, _ = danish_group
    e = measures.exposure(a)
    assert (e.held, e.planned) == (14, 36)
    assert e.share_of_held == Fraction(11, 14) and e.share_of_planned == Fraction(11, 36)
    assert e.scheduled == 14 and e.share == Fraction(11, 14)  # Danish: scheduled = held


def test_days_from_randomization_to_the_first_session_attended(danish_group):
    _, a, b, _ = danish_group
    # A missed 2026-01-05 and first came on 2026-01-12: 31 + 11 days after 2025-12-01.
    assert measures.exposure(a).days_to_first_session == 42
    assert measures.exposure(b).days_to_first_session == 35


def test_modules_received_are_those_of_the_sessions_attended(danish_group):
    _, a, _, c = danish_group
    # A attended sessions 2-12 (the 12th as catch-up): modules 1-6, two sessions each.
    assert measures.exposure(a).modules == Module.values[:6]
    assert measures.exposure(c).modules == Module.values[:5]


@pytest.fixture
def dutch_group(dutch):
    """A rolling group planned at 10 sessions, 8 held weekly from 2026-01-05.
    X joined at the start: attended 1-5, absent 6-8 -> 5 attended
    Y joined at session 4 (2026-01-26): attended 4-7, absent 8 -> 4 attended of 5 held
    """
    site = dutch.sites.get(code="team-01")
    facilitators = [make_person(dutch, Role.FACILITATOR, site, f"trainer{i}") for i in (1, 2)]
    by = facilitators[0]
    group = make_group(
        dutch,
        site,
        facilitators,
        planned_sessions=10,
        enrolment=ImrGroup.Enrolment.ROLLING,
        capacity=8,
    )
    x = randomized(dutch, site, "imr", pid="NL-X")
    y = randomized(dutch, site, "imr", pid="NL-Y")
    services.add_member(group, x, by=by, joined_on=START)
    days = weekly(8)
    services.add_member(group, y, by=by, joined_on=days[3])
    for i, day in enumerate(days):
        attendance = {x: A.ATTENDED if i < 5 else A.ABSENT}
        if i >= 3:
            attendance[y] = A.ATTENDED if i < 7 else A.ABSENT
        log(group, day, attendance, by=by)
    return group, x, y


def test_dutch_completer_is_half_of_the_planned_sessions(dutch_group):
    _, x, y = dutch_group
    ex, ey = measures.exposure(x), measures.exposure(y)
    assert (ex.attended, ex.planned, ex.share) == (5, 10, Fraction(1, 2))
    assert ex.completer is True  # exactly 50%: ">= 50%" of the methods
    # Y came to 4 of the 5 sessions held since joining (80%), but 4 of 10 scheduled is 40%.
    assert (ey.held, ey.share_of_held) == (5, Fraction(4, 5))
    assert (ey.scheduled, ey.share, ey.completer) == (10, Fraction(2, 5), False)
    assert ex.exposed is None and not ex.fidelity_eligible


def test_a_participant_in_no_group_has_no_exposure(dutch):
    site = dutch.sites.get(code="team-02")
    e = measures.exposure(randomized(dutch, site, "imr"))
    assert (e.attended, e.held, e.planned, e.share, e.completer) == (0, 0, None, None, False)
    assert e.days_to_first_session is None and e.modules == []


def test_each_trial_computes_by_the_rules_of_its_own_file(danish, dutch):
    from imrtrial import trialconfig

    assert rules.for_trial(danish).exposed_min_sessions == 11
    assert rules.for_trial(dutch).completer_min_share == Fraction(1, 2)
    # A copy of the Dutch file under another key has the Dutch rules: they were keyed by the
    # trial's key in code, and any other key silently got the Danish ones.
    text = trialconfig.resolve("dutch").read_text().replace("key: dutch-imr", "key: dutch-copy")
    copy = trialconfig.create_trial(trialconfig.parse(text))
    assert rules.for_trial(copy) == rules.for_trial(dutch)


def test_a_trial_without_rules_is_refused_not_given_another_trials(danish):
    danish.imr_rules.delete()
    danish = type(danish).objects.get(pk=danish.pk)
    with pytest.raises(rules.NoRules, match="has no IMR programme rules"):
        rules.for_trial(danish)


def test_the_attendance_chart_counts_members_and_those_present(danish_group):
    group, *_ = danish_group
    rows = list(measures.session_rows(group))
    assert [(r.members, r.present) for r in rows[:2]] == [(3, 2), (3, 3)]
    assert (rows[-1].date, rows[-1].present) == (D(2026, 4, 6), 0)
