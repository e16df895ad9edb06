"""In a real browser: a facilitator logs one week's session for a whole IMR group."""

import datetime

import pytest
from django.utils import timezone

from fidelity import services
from fidelity.models import Attendance, Session
from imrtrial.models import Role
from tests.factories import make_allocation, make_participant, make_person

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    # Until fidelity.urls is wired into imrtrial/urls.py; harmless afterwards.
    pytest.mark.urls("tests.fidelity.urls"),
]


@pytest.fixture
def group_of_ten(roles_restored, danish):
    trial = danish
    site = trial.sites.get(code="gladsaxe")
    facilitators = [
        make_person(trial, Role.FACILITATOR, site, f"fac{i}", password=PASSWORD) for i in (1, 2)
    ]
    group = services.create_group(
        trial,
        site,
        by=facilitators[0],
        name="Gladsaxe Tuesday group",
        facilitators=facilitators,
        start_date=datetime.date(2026, 1, 6),
        planned_sessions=36,
        capacity=10,
    )
    for i in range(1, 11):
        participant = make_participant(trial, site=site, participant_id=f"DK-{i:04d}")
        make_allocation(participant, "imr", by=facilitators[0])
        services.add_member(group, participant, by=facilitators[0], joined_on=group.start_date)
    return trial, group


def test_facilitator_logs_a_sessions_attendance_for_the_whole_group(
    browser, live_server, group_of_ten
):
    trial, group = group_of_ten
    page = sign_in(browser, live_server, "fac1")
    page.goto(f"{live_server.url}/trials/{trial.key}/imr-groups/")
    page.get_by_role("link", name="Gladsaxe Tuesday group").click()
    page.get_by_role("link", name="Log a session").click()

    assert page.get_by_role("heading", name="Log a session of Gladsaxe Tuesday group").is_visible()
    page.get_by_label("Coping with stress").check()
    # Everyone starts as attended: only the exceptions take a click.
    page.locator('[data-member="DK-0003"]').get_by_label("Absent").check()
    page.locator('[data-member="DK-0007"]').get_by_label("Individual catch-up").check()
    page.get_by_role("button", name="Save session").click()

    assert page.get_by_text("9 of 10 members attended").is_visible()
    session = Session.objects.get(group=group)
    assert session.date == timezone.localdate() and session.modules == ["coping_stress"]
    statuses = dict(session.attendance.values_list("participant__participant_id", "status"))
    assert statuses["DK-0003"] == Attendance.Status.ABSENT
    assert statuses["DK-0007"] == Attendance.Status.CATCH_UP
    assert list(statuses.values()).count(Attendance.Status.ATTENDED) == 8
    row = page.locator('tr[data-participant="DK-0007"]')
    assert row.get_by_test_id("attended").inner_text() == "1"  # catch-up counts as attended
    page.close()
