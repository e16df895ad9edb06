"""In a real browser, in Danish and Dutch: a Danish assessor enters a full PANSS by keyboard and
an IMRS with a mean score (written with the decimal comma); a Dutch coordinator walks the phone
desk from screening to randomization. Every label and button the walks use is the catalogue's
translation, asked of the catalogue (so a missing translation fails here). Full-page
screenshots of the desk's screening form and a CRF entry page in both languages, at a phone's
and a desktop's width, go to $LANGUAGE_SHOTS (or the test's temporary folder), and no page is
wider than the screen."""

import os
import re
from pathlib import Path

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext, pgettext

from assessments.models import FormEntry
from assessments.services import schedule_visits
from imrtrial import i18n
from imrtrial.models import Role
from randomization.services import allocation_of
from tests.factories import make_person, make_ready_participant

from .conftest import PASSWORD, sign_in
from .test_layout import OVERFLOW, STYLED, WIDE_ELEMENTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SIZES = {390: 844, 1280: 900}
FIRST_ENTRY = "First entry"


def tr(language, msgid, context=None):
    """The catalogue's text for `msgid` in `language`, which must differ from the English."""
    with translation.override(language):
        text = pgettext(context, msgid) if context else gettext(msgid)
    assert text != msgid, f"{msgid!r} has no {language} translation"
    return text


def person(trial, role, username, language):
    user = make_person(trial, role, username=username, password=PASSWORD)
    i18n.set_preference(user, language)
    return user


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("LANGUAGE_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def danish_visit(roles_restored, danish):
    coordinator = make_person(danish, Role.COORDINATOR, username="desk-b")
    person(danish, Role.ASSESSOR, "rater-da", "da")
    participant = make_ready_participant(danish, coordinator, baseline=False)
    schedule_visits(danish)
    return participant.visits.get(timepoint__code="baseline")


def test_a_danish_assessor_enters_a_panss_and_an_imrs_in_danish(browser, live_server, danish_visit):
    visit = danish_visit
    page = sign_in(browser, live_server, "rater-da", "da")
    assert page.locator("html").get_attribute("lang") == "da"
    page.get_by_role("link", name=tr("da", "Worklist")).click()
    page.get_by_role("link", name=visit.participant.participant_id).click()

    # The visit page's dates as Danes write them (30.11.2026), in the catalogue's sentence.
    sentence = tr("da", "Target %(target)s, window %(start)s – %(end)s.") % {
        "target": f"{visit.target_date:%d.%m.%Y}",
        "start": f"{visit.window_start:%d.%m.%Y}",
        "end": f"{visit.window_end:%d.%m.%Y}",
    }
    assert page.get_by_text(sentence).is_visible()

    panss = page.get_by_role("row").filter(has_text="Positive and Negative Syndrome Scale")
    panss.get_by_role("link", name=tr("da", "Enter")).click()
    page.wait_for_url("**/forms/panss/**")
    assert page.get_by_role("heading", name="Positive and Negative Syndrome Scale").is_visible()
    assert page.get_by_role("button", name=tr("da", "Save draft")).is_visible()
    assert page.get_by_role("button", name=tr("da", "Complete", "button"), exact=True).is_visible()
    for n in range(30):
        page.keyboard.type(str(1 + n % 7))
        page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the Danish "Save draft" to "Complete"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/visits/{visit.pk}/")
    entry = FormEntry.objects.get(instrument="panss")
    assert entry.status == "complete"
    assert entry.values["p1"] == 1 and entry.values["g16"] == 1 + 29 % 7
    assert entry.scores["total"] == sum(1 + n % 7 for n in range(30))

    # The IMRS: 15 items, a mean item score of 31 / 15, written with the decimal comma.
    # Entered twice (double data entry): the first entry.
    page.locator("#f-imrs_p").get_by_role("link", name=tr("da", FIRST_ENTRY)).click()
    page.wait_for_url("**/forms/imrs_p/first/")
    page.get_by_role("button", name=tr("da", "Save draft")).wait_for()
    for n in range(15):
        page.keyboard.type("3" if n == 0 else "2")
        page.keyboard.press("Tab")
    page.get_by_role("button", name=tr("da", "Complete", "button")).click()
    page.wait_for_url(f"**/visits/{visit.pk}/")
    assert FormEntry.objects.get(instrument="imrs_p").status == "complete"
    # The completed entry, opened again, shows its scores.
    page.goto(f"{page.url}forms/imrs_p/first/")
    scores = page.locator("#scores-h").locator("xpath=..").inner_text()
    # The score's label in Danish too (imrs_p.yaml gives it in every language).
    mean = re.search(r"IMRS, gennemsnitlig punktscore:\s*([\d.,]+)", scores)
    assert mean, scores
    assert scores.startswith(tr("da", "Scores"))
    assert mean.group(1) == "2,07", scores  # 31 / 15, to two places
    page.close()


@pytest.fixture
def dutch_desk(roles_restored, dutch):
    person(dutch, Role.COORDINATOR, "desk-nl", "nl")
    return dutch


def test_a_dutch_coordinator_screens_enrols_and_randomizes_in_dutch(
    browser, live_server, dutch_desk
):
    trial = dutch_desk
    nl = lambda msgid: tr("nl", msgid)  # noqa: E731
    page = sign_in(browser, live_server, "desk-nl", "nl")
    assert page.locator("html").get_attribute("lang") == "nl"
    page.get_by_role("link", name=nl("Phone desk")).click()
    page.get_by_role("link", name=nl("New screening")).click()

    site = trial.sites.order_by("code").first()
    page.get_by_label(nl("Site")).select_option(label=site.name)
    page.get_by_label(nl("Referral source")).fill("Casemanager")
    for criterion in trial.criteria.all():
        group = page.locator(f"#div_id_c_{criterion.code}")
        answer = nl("Yes") if criterion.kind == "inclusion" else nl("No")
        group.get_by_label(answer, exact=True).check()
    for label, value in (
        ("Full name", "Anna de Vries"),
        ("National id", "123456782"),
        ("Consent date", "2026-11-02"),
        ("Consent form version", "2.0"),
        ("Consent obtained by", "Dr Jansen"),
    ):
        field = page.get_by_label(nl(label))
        if field.count():
            field.fill(value)
    page.get_by_role("button", name=nl("Save screening")).click()

    assert page.get_by_text(nl("Eligible"), exact=True).is_visible()
    page.get_by_role("button", name=nl("Enrol and continue")).click()

    assert page.get_by_role("heading", name=nl("Randomize")).is_visible()
    assert page.get_by_text(site.name, exact=True).first.is_visible()
    page.get_by_label(nl("Baseline assessment completed on")).fill("2026-11-03")
    page.get_by_label(
        nl("I have read the participant id and stratification factors back to the caller.")
    ).check()
    page.get_by_role("button", name=nl("Randomize")).click()

    assert page.get_by_role("heading", name=nl("Randomized")).is_visible()
    participant = trial.participants.get()
    allocation = allocation_of(participant)
    assert page.get_by_test_id("code").inner_text() == allocation.confirmation_code
    # The moment of allocation as the Dutch write it: 30-11-2026 14:05 CET.
    moment = timezone.localtime(allocation.allocated_at)
    assert page.get_by_text(f"{moment:%d-%m-%Y %H:%M} {moment:%Z}", exact=True).is_visible()
    assert trial.allocations.count() == 1
    page.close()


def _shoot(page, shots, name, too_wide):
    for width, height in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)
        assert page.evaluate(STYLED), f"{name}: a stylesheet did not load"
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
        scroll_width, inner_width = page.evaluate(OVERFLOW)
        if scroll_width > inner_width:
            too_wide.append(
                f"{name} at {width}px: {scroll_width}px: {page.evaluate(WIDE_ELEMENTS)}"
            )


@pytest.mark.parametrize("language", ["da", "nl"])
def test_the_desk_and_a_crf_page_fit_a_phone_and_a_desktop(
    browser, live_server, roles_restored, danish, dutch, shots, language
):
    trial, instrument = (danish, "panss") if language == "da" else (dutch, "imrs_client")
    coordinator = person(trial, Role.COORDINATOR, f"desk-{language}", language)
    person(trial, Role.ASSESSOR, f"rater-{language}", language)
    participant = make_ready_participant(trial, coordinator, baseline=False)
    schedule_visits(trial)
    visit = participant.visits.order_by("target_date").first()
    too_wide = []

    page = sign_in(browser, live_server, f"desk-{language}", language)
    page.goto(f"{live_server.url}/trials/{trial.key}/desk/screen/")
    assert page.get_by_role("button", name=tr(language, "Save screening")).is_visible()
    _shoot(page, shots, f"desk-{language}", too_wide)
    page.close()

    page = sign_in(browser, live_server, f"rater-{language}", language)
    response = page.goto(
        f"{live_server.url}/trials/{trial.key}/visits/{visit.pk}/forms/{instrument}/single/"
    )
    assert response.status == 200
    assert page.get_by_role("button", name=tr(language, "Save draft")).is_visible()
    _shoot(page, shots, f"crf-{language}", too_wide)
    page.close()
    assert not too_wide, too_wide
