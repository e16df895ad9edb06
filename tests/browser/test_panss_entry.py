"""In a real browser: an assessor opens the worklist and enters a full PANSS by keyboard."""

import pytest

from assessments.models import FormEntry
from assessments.services import schedule_visits
from imrtrial.models import Role
from imrtrial.trialconfig import create_trial, parse, resolve
from tests.factories import grant, make_ready_participant, make_user

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def baseline_visit(roles_restored):
    trial = create_trial(parse(resolve("danish").read_text()))
    trial.status = "open"
    trial.save(update_fields=["status"])
    desk = make_user("desk-b")
    grant(desk, trial, Role.COORDINATOR)
    grant(make_user("rater", password=PASSWORD), trial, Role.ASSESSOR)
    participant = make_ready_participant(trial, desk, baseline=False)
    schedule_visits(trial)
    return participant.visits.get(timepoint__code="baseline")


def test_assessor_enters_a_full_panss_without_the_mouse(browser, live_server, baseline_visit):
    page = sign_in(browser, live_server, "rater")
    page.get_by_role("link", name="Worklist").click()
    page.get_by_role("link", name=baseline_visit.participant.participant_id).click()
    page.get_by_role("link", name="Enter").nth(4).click()  # forms in schedule order; PANSS 5th
    assert page.get_by_role("heading", name="Positive and Negative Syndrome Scale").is_visible()
    # The first item has the focus; type a rating and Tab to the next, 30 times.
    for n in range(30):
        page.keyboard.type(str(1 + n % 7))
        page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past "Save draft" to "Complete"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/visits/{baseline_visit.pk}/")
    entry = FormEntry.objects.get(instrument="panss")
    assert entry.status == "complete"
    assert entry.values["p1"] == 1 and entry.values["g16"] == 1 + 29 % 7
    assert entry.scores["total"] == sum(1 + n % 7 for n in range(30))
    page.close()
