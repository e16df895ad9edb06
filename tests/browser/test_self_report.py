"""In a real browser: a participant answers the IMR scale on the assessor's tablet and the
assessor's password ends the hand-over; a participant opens a link on a phone 320 px wide,
passes the year-of-birth check, stops halfway, comes back in another browser and finishes; an
expired link, a used one and a wrong check each show a plain message. On every participant
screen: axe finds no serious or critical violation, nothing is wider than the screen, and the
pages hold no script (every answer is a plain form post)."""

import re
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from assessments import registry
from assessments.models import FormEntry
from assessments.services import save_entry
from selfreport import services
from selfreport.models import Link
from staff.models import token_digest
from tests.selfreport import world as w

from .conftest import run_axe, sign_in
from .test_layout import OVERFLOW, STYLED, WIDE_ELEMENTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SERIOUS = {"serious", "critical"}
TABLET = {"width": 768, "height": 1024}
PHONE = {"width": 320, "height": 640}


def checked(page, axe_source, seen):
    """axe, the stylesheets and the width, once per kind of screen."""
    path = re.sub(r"\d+", "N", urlparse(page.url).path)
    kind = re.sub(r"^/r/[^/]+/", "/r/T/", path)
    if kind in seen:
        return
    seen.add(kind)
    assert page.evaluate(STYLED), f"{page.url}: a stylesheet did not load"
    # No script at all: every answer is a plain form post.
    assert page.locator("script").count() == 0, page.url
    scroll_width, inner_width = page.evaluate(OVERFLOW)
    assert scroll_width <= inner_width, (page.url, page.evaluate(WIDE_ELEMENTS))
    serious = [v for v in run_axe(page, axe_source) if v["impact"] in SERIOUS]
    assert serious == [], (page.url, serious)


def answer(page, code, values, axe_source, seen):
    """Answer one question per screen by touching the choice, then Next."""
    for value in values:
        page.get_by_label(value, exact=True).check()
        checked(page, axe_source, seen)
        page.get_by_role("button", name="Next").or_(
            page.get_by_role("button", name="Save and continue")
        ).click()


@pytest.fixture
def setting(roles_restored):
    return w.build("en", arms=1)


def test_a_participant_answers_the_imrs_on_the_tablet_and_the_assessor_unlocks(
    browser, live_server, setting, axe_source
):
    visit, seen = setting.visits[0], set()
    page = sign_in(browser, live_server, "rater")
    page.set_viewport_size(TABLET)
    page.goto(f"{live_server.url}/trials/{setting.trial.key}/visits/{visit.pk}/")
    page.get_by_role("button", name="Hand the tablet to the participant").click()
    page.wait_for_url("**/hand-over/*/")
    checked(page, axe_source, seen)
    imrs = page.get_by_role("listitem").filter(has_text="IMRS-P")
    imrs.get_by_role("link", name="Start").click()
    # Nothing else of the site: the address bar typed to the home page comes back here.
    page.goto(f"{live_server.url}/trials/{setting.trial.key}/participants/")
    assert "/hand-over/" in page.url
    page.go_back()
    page.wait_for_url("**/imrs_p/1/")
    assert page.locator("progress").count() == 1
    answer(page, "imrs_p", ["4"] * 14 + ["5"], axe_source, seen)
    # The finish screen, with the way back.
    page.get_by_role("button", name="Finish this questionnaire").click()
    checked(page, axe_source, seen)
    page.get_by_role("link", name="Stop and give the tablet back").click()
    checked(page, axe_source, seen)
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="End the hand-over").click()
    page.get_by_text("That password is not right.").wait_for()
    page.get_by_label("Password").fill(w.PASSWORD)
    page.get_by_role("button", name="End the hand-over").click()
    page.wait_for_url(f"**/visits/{visit.pk}/")
    page.get_by_text("The hand-over has ended.", exact=False).wait_for()
    entry = FormEntry.objects.get(instrument="imrs_p")
    assert (entry.status, entry.entered_via) == ("complete", "tablet")
    assert entry.scores["total"] == 4 * 14 + 5
    row = page.locator("#f-imrs_p")
    assert "Participant, on a tablet" in row.inner_text()
    page.close()


def only_the_imrs_open(setting):
    """The visit's other self-report forms are typed from paper, so the link opens the IMRS."""
    visit = setting.visits[0]
    for code in services.self_report_codes(visit):
        if code != "imrs_p":
            save_entry(visit, code, {}, by=setting.assessor, kind="first")
    return visit


def test_a_participant_opens_a_link_stops_halfway_returns_and_finishes(
    browser, live_server, setting, axe_source
):
    visit = only_the_imrs_open(setting)
    link, token = services.send_link(visit, "sms", by=setting.assessor)
    assert link.instruments == ["imrs_p"]
    seen = set()
    phone = browser.new_context(viewport=PHONE)
    page = phone.new_page()
    page.goto(f"{live_server.url}/r/{token}/")
    checked(page, axe_source, seen)
    label = "To make sure this link reached you, please type the year you were born"
    page.get_by_label(label, exact=False).fill("1990")
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("That is not right. You have 4 more tries.").wait_for()
    page.get_by_label(label, exact=False).fill(str(w.BIRTH_YEAR))
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Start").click()
    answer(page, "imrs_p", ["3"] * 6, axe_source, seen)
    phone.close()  # stops halfway

    later = browser.new_context(viewport=PHONE)
    page = later.new_page()
    page.goto(f"{live_server.url}/r/{token}/")
    page.get_by_label(label, exact=False).fill(str(w.BIRTH_YEAR))
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("6 questions answered.").wait_for()
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url("**/imrs_p/7/")
    # Back shows the answer given before.
    page.get_by_role("link", name="Back").click()
    assert page.get_by_label("3", exact=True).is_checked()
    page.get_by_role("button", name="Next").click()
    answer(page, "imrs_p", ["2"] * 9, axe_source, seen)
    page.get_by_role("button", name="Finish this questionnaire").click()
    page.get_by_role("heading", name="Thank you").wait_for()
    checked(page, axe_source, seen)
    entry = FormEntry.objects.get(instrument="imrs_p", kind="single")
    assert (entry.status, entry.entered_via) == ("complete", "link")
    assert len(entry.values) == len(registry.get("imrs_p").items)
    # Used: the plain page.
    page.goto(f"{live_server.url}/r/{token}/")
    page.get_by_role("heading", name="This link does not work").wait_for()
    checked(page, axe_source, seen)
    later.close()


def test_an_expired_link_and_a_wrong_check_show_a_plain_message(
    browser, live_server, setting, axe_source
):
    visit = setting.visits[0]
    link, token = services.send_link(visit, "email", by=setting.assessor)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/r/{token}/")
    for _ in range(Link.MAX_FAILED_CHECKS):
        page.get_by_label("year you were born", exact=False).fill("1901")
        page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="This link does not work").wait_for()
    text = page.locator("main").inner_text()
    assert visit.participant.participant_id not in text and "1975" not in text

    _, fresh = services.send_link(visit, "email", by=setting.assessor)
    Link.objects.filter(token_hash=token_digest(fresh)).update(expires_at=timezone.now())
    page.goto(f"{live_server.url}/r/{fresh}/")
    assert page.locator("main").inner_text() == text  # the same words, whatever the reason
    seen = set()
    checked(page, axe_source, seen)
    context.close()
