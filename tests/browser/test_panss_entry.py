"""In a real browser: an assessor opens the worklist and enters a full PANSS by keyboard."""

import pytest

from assessments.models import FormEntry
from assessments.services import schedule_visits
from imrtrial.models import Role
from tests.factories import make_person, make_ready_participant

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def baseline_visit(roles_restored, danish):
    coordinator = make_person(danish, Role.COORDINATOR, username="desk-b")
    make_person(danish, Role.ASSESSOR, username="rater", password=PASSWORD)
    participant = make_ready_participant(danish, coordinator, baseline=False)
    schedule_visits(danish)
    return participant.visits.get(timepoint__code="baseline")


def test_assessor_enters_a_full_panss_without_the_mouse(browser, live_server, baseline_visit):
    page = sign_in(browser, live_server, "rater")
    page.get_by_role("link", name="Worklist").click()
    page.get_by_role("link", name=baseline_visit.participant.participant_id).click()
    panss = page.get_by_role("row").filter(has_text="Positive and Negative Syndrome Scale")
    panss.get_by_role("link", name="Enter").click()
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
