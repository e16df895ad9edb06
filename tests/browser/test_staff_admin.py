"""In a real browser, with no Django admin: the trial administrator invites an assessor by
e-mail; the assessor opens the link, sets a password, enrols two-factor sign-in and opens the
worklist; the administrator withdraws the role, and the assessor's very next request gets no
trial data."""

import base64
import re
import time

import pytest
from django.core import mail
from django_otp.oath import hotp

from imrtrial.models import Role
from tests.factories import grant, make_trial, make_user

from .conftest import PASSWORD, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

NEW_PASSWORD = "a-quiet-lantern-over-the-fjord"
PHONE = {"width": 390, "height": 844}


def _fits(page):
    """The page's own content is no wider than a phone's screen."""
    width = page.evaluate("document.querySelector('main').scrollWidth")
    assert width <= PHONE["width"], (page.url, width)


def test_an_invited_assessor_enrols_works_and_loses_access_when_the_role_is_withdrawn(
    browser, live_server, roles_restored
):
    trial = make_trial(name="Browser trial")
    grant(make_user("admin", password=PASSWORD), trial, Role.TRIAL_ADMIN)

    admin = sign_in(browser, live_server, "admin")
    admin.set_viewport_size(PHONE)  # the administrator works on a phone: nothing overflows
    admin.get_by_role("link", name="Trial administration").click()
    _fits(admin)
    admin.get_by_role("link", name="Invite a member of staff").click()
    _fits(admin)
    admin.get_by_label("E-mail address").fill("nina.holm@example.org")
    admin.get_by_label("First name").fill("Nina")
    admin.get_by_label("Last name").fill("Holm")
    admin.get_by_label("Role").select_option(label="Blinded assessor")
    admin.get_by_label("Site").select_option(label="North CMHC")
    admin.get_by_label("Reason").fill("New assessor at North from 1 March")
    admin.get_by_role("button", name="Send the invitation").click()
    assert admin.get_by_text("Invited nina").is_visible()

    (message,) = [m for m in mail.outbox if m.to == ["nina.holm@example.org"]]
    link = re.search(r"https?://\S+/invitation/\S+/", message.body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]

    nina = browser.new_page()
    nina.goto(f"{live_server.url}/{path}")
    # Two fields are labelled "New password..." (crispy adds an asterisk): by their ids.
    nina.locator("#id_new_password1").fill(NEW_PASSWORD)
    nina.locator("#id_new_password2").fill(NEW_PASSWORD)
    nina.get_by_role("button", name="Set my password").click()

    nina.wait_for_url(f"{live_server.url}/account/two-factor/?next=*")
    assert nina.get_by_role("heading", name="Set up two-factor sign-in").is_visible()
    secret = base64.b32decode(nina.get_by_test_id("secret").inner_text().replace(" ", ""))
    nina.get_by_label("Authentication code").fill(f"{hotp(secret, int(time.time()) // 30):06d}")
    nina.get_by_role("button", name="Confirm and turn on").click()
    nina.wait_for_url(f"{live_server.url}/")
    assert nina.get_by_text("Two-factor sign-in is on").is_visible()

    nina.get_by_role("link", name="Worklist").click()
    assert nina.get_by_role("heading", name="Your worklist").is_visible()
    worklist = nina.url

    # The link was spent.
    again = browser.new_page()
    assert again.goto(link.replace(link.split("/invitation/")[0], live_server.url)).status == 404
    again.close()

    admin.get_by_role("link", name="Trial administration").click()
    admin.get_by_role("link", name="Staff and their roles").click()
    _fits(admin)
    admin.get_by_role("link", name=re.compile(r"^nina")).click()
    _fits(admin)
    admin.get_by_label("Role to withdraw").select_option(label="Blinded assessor (North CMHC)")
    admin.get_by_label("Reason for withdrawing").fill("Moved to another study")
    admin.get_by_role("button", name="Withdraw the role").click()
    assert admin.get_by_text("Withdrew the role").is_visible()

    response = nina.goto(worklist)
    assert response.status == 404
    assert "Browser trial" not in nina.content()
    nina.goto(f"{live_server.url}/")
    assert "Browser trial" not in nina.content()
    assert nina.get_by_role("link", name="Worklist").count() == 0
    admin.close()
    nina.close()
