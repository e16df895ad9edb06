"""In a real browser: a coordinator without a device is sent to enrolment, sees the QR code
(inline SVG, which the content security policy lets through) and the secret, confirms with the
code an app would compute from that secret, and reaches the site."""

import base64
import time

import pytest
from django_otp.oath import hotp

from imrtrial.models import Role
from tests.factories import grant, make_trial, make_user

from .conftest import PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_coordinator_enrols_an_authenticator_app_at_first_sign_in(
    browser, live_server, roles_restored
):
    trial = make_trial(name="Browser trial")
    grant(make_user("new-desk", password=PASSWORD), trial, Role.COORDINATOR)
    page = browser.new_page()
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("new-desk")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{live_server.url}/account/two-factor/?next=*")
    assert page.get_by_role("heading", name="Set up two-factor sign-in").is_visible()
    qr = page.get_by_role("img", name="QR code of your secret key for the authenticator app")
    assert qr.is_visible() and qr.bounding_box()["width"] >= 200
    secret = base64.b32decode(page.get_by_test_id("secret").inner_text().replace(" ", ""))
    page.get_by_label("Authentication code").fill(f"{hotp(secret, int(time.time()) // 30):06d}")
    page.get_by_role("button", name="Confirm and turn on").click()

    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_text("Two-factor sign-in is on").is_visible()
    assert page.get_by_role("link", name="Phone desk").is_visible()
    assert not [line for line in console if "Content Security Policy" in line], console
    page.close()
