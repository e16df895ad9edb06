"""In a real browser: a coordinator and an assessor sign in and see only their own work."""

import os
import shutil

import pytest

from imrtrial.models import Role
from tests.factories import grant, make_allocation, make_participant, make_trial, make_user

# Playwright's sync API runs an event loop in this thread; the ORM calls below happen before
# and after pages load, never concurrently with the live server's own queries on this thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium")
PASSWORD = "correct-horse-battery-staple"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (scripts/ensure-chromium.sh installs it)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def trial_with_staff():
    trial = make_trial(name="Browser trial")
    coordinator = make_user("desk")
    grant(coordinator, trial, Role.COORDINATOR)
    grant(make_user("rater"), trial, Role.ASSESSOR)
    make_allocation(make_participant(trial, participant_id="BR-001"), "imr", by=coordinator)
    return trial


def sign_in(browser, live_server, username):
    page = browser.new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    return page


def test_coordinator_and_assessor_each_see_their_own_work(browser, live_server, trial_with_staff):
    trial = trial_with_staff

    desk = sign_in(browser, live_server, "desk")
    assert desk.get_by_text("Coordinator (phone desk)").is_visible()
    desk.get_by_role("link", name="Allocations").click()
    assert desk.get_by_role("heading", name="Allocations").is_visible()
    assert desk.get_by_role("cell", name="IMR + TAU").is_visible()
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
