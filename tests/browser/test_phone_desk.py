"""In a real browser: a coordinator walks the phone desk from screening to the result."""

import pytest

from imrtrial.models import Role
from randomization.services import allocation_of
from tests.factories import make_person

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def open_trial(roles_restored, danish):
    make_person(danish, Role.COORDINATOR, username="desk", password=PASSWORD)
    return danish


def test_coordinator_screens_enrols_and_randomizes_while_the_caller_waits(
    browser,
    live_server,
    open_trial,  # noqa: F811
):
    trial = open_trial
    page = sign_in(browser, live_server, "desk")
    page.get_by_role("link", name="Phone desk").click()
    page.get_by_role("link", name="New screening").click()

    page.get_by_label("Site").select_option(label="CMHC Gladsaxe")
    page.get_by_label("Referral source").fill("Case manager")
    for criterion in trial.criteria.all():
        group = page.locator(f"#div_id_c_{criterion.code}")
        group.get_by_label("Yes" if criterion.kind == "inclusion" else "No", exact=True).check()
    page.get_by_label("Full name").fill("Ada Jensen")
    page.get_by_label("National id").fill("010190-1234")
    page.get_by_label("Consent date").fill("2026-11-02")
    page.get_by_label("Consent form version").fill("2.0")
    page.get_by_label("Consent obtained by").fill("Dr Hansen")
    page.get_by_role("button", name="Save screening").click()

    assert page.get_by_text("Eligible", exact=True).is_visible()
    page.get_by_label("Bipolar disorder (F31.x)").check()
    page.get_by_role("button", name="Enrol and continue").click()

    assert page.get_by_role("heading", name="Randomize").is_visible()
    assert page.get_by_text("CMHC Gladsaxe").is_visible()
    page.get_by_label("Baseline assessment completed on").fill("2026-11-01")
    page.get_by_label("I have read the participant id").check()
    page.get_by_role("button", name="Randomize").click()

    assert page.get_by_role("heading", name="Randomized").is_visible()
    participant = trial.participants.get()
    allocation = allocation_of(participant)
    assert page.get_by_test_id("arm").inner_text() == allocation.arm.label
    assert page.get_by_test_id("code").inner_text() == allocation.confirmation_code
    page.reload()  # a refresh shows the same result and allocates nothing new
    assert page.get_by_test_id("code").inner_text() == allocation.confirmation_code
    assert trial.allocations.count() == 1
    page.close()
