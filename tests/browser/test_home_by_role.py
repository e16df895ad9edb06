"""In a real browser: a coordinator and an assessor sign in and see only their own work."""

import pytest

from imrtrial.models import Role
from tests.factories import grant, make_allocation, make_participant, make_trial, make_user

from .conftest import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def trial_with_staff(roles_restored):
    trial = make_trial(name="Browser trial")
    coordinator = make_user("desk")
    grant(coordinator, trial, Role.COORDINATOR)
    grant(make_user("rater"), trial, Role.ASSESSOR)
    make_allocation(make_participant(trial, participant_id="BR-001"), "imr", by=coordinator)
    return trial


def test_coordinator_and_assessor_each_see_their_own_work(browser, live_server, trial_with_staff):
    trial = trial_with_staff

    desk = sign_in(browser, live_server, "desk")
    assert desk.get_by_text("Coordinator (phone desk)").is_visible()
    desk.get_by_role("link", name="Allocations").click()
    assert desk.get_by_role("heading", name="Allocations").is_visible()
    desk.get_by_label("Participant id").fill("BR-001")
    desk.get_by_role("button", name="Look up").click()
    assert desk.get_by_test_id("arm").inner_text() == "IMR + TAU"
    desk.close()

    rater = sign_in(browser, live_server, "rater")
    assert rater.get_by_text("Blinded assessor").is_visible()
    assert rater.get_by_role("link", name="Allocations").count() == 0
    rater.get_by_role("link", name="Participants").click()
    rater.get_by_role("link", name="BR-001").click()
    assert rater.get_by_role("heading", name="BR-001").is_visible()
    assert "IMR + TAU" not in rater.content()
    response = rater.goto(f"{live_server.url}/trials/{trial.key}/allocations/")
    assert response.status == 404
    rater.close()
