"""The CRF pages in Danish and Dutch: translated headings and buttons, and decimals written
with the decimal comma (entered and shown), while English stays the source and the default."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation
from django.utils.translation import trans_real

from assessments import registry
from assessments.definitions import clean
from assessments.views import shown_value

pytestmark = pytest.mark.django_db

# Button and heading texts of the entry page and the worklist, in each language.
ENTRY_WORDS = {
    "en": ["Save draft", "Complete", "Type a value or a missing-value code", "ND = not done"],
    "da": [
        "Gem kladde",
        "Færdiggør",
        "Skriv en værdi eller en kode for manglende værdi",
        "ND = ikke udført",
    ],
    "nl": [
        "Concept opslaan",
        "Voltooien",
        "Typ een waarde of een code voor een ontbrekende",
        "ND = niet afgenomen",
    ],
}
WORKLIST_WORDS = {
    "en": ["Your worklist", "Participant", "Window"],
    "da": ["Din arbejdsliste", "Deltager", "Vindue"],
    "nl": ["Uw werklijst", "Deelnemer", "Venster"],
}


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogues():
    """The .mo files are built, not committed: compile the project's catalogues, and forget any
    catalogue a process loaded before they existed."""
    call_command("compilemessages", locale=["da", "nl"], verbosity=0, ignore=["node_modules"])
    trans_real._translations = {}
    trans_real._default = None
    if hasattr(trans_real.check_for_language, "cache_clear"):
        trans_real.check_for_language.cache_clear()


def get_in(client, url, language):
    """The page as a reader who chose `language` gets it (the language cookie, and the
    browser's language, for LocaleMiddleware; the active language where there is none)."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    with translation.override(language):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language", ["da", "nl"])
def test_the_entry_page_is_in_the_readers_language(client, danish, post_visit, assessor, language):
    client.force_login(assessor)
    url = reverse("assessments:entry", args=[danish.key, post_visit.pk, "panss", "single"])
    page = get_in(client, url, language)
    for words in ENTRY_WORDS[language]:
        assert words in page
    assert "Save draft" not in page and ENTRY_WORDS["en"][2] not in page
    assert "not done" not in page
    assert ">Complete<" not in page


@pytest.mark.parametrize("language", ["da", "nl"])
def test_the_worklist_is_in_the_readers_language(client, danish, randomized, assessor, language):
    client.force_login(assessor)
    page = get_in(client, reverse("assessments:worklist", args=[danish.key]), language)
    for words in WORKLIST_WORDS[language]:
        assert words in page
    assert "Your worklist" not in page and "Visits due, soonest deadline first" not in page


def test_english_stays_the_default(client, danish, post_visit, assessor):
    client.force_login(assessor)
    url = reverse("assessments:entry", args=[danish.key, post_visit.pk, "panss", "single"])
    page = client.get(url).content.decode()
    for words in ENTRY_WORDS["en"]:
        assert words in page
    assert "Gem kladde" not in page and "Concept opslaan" not in page


def test_an_entry_error_is_shown_in_the_readers_language(client, danish, post_visit, assessor):
    client.force_login(assessor)
    url = reverse("assessments:entry", args=[danish.key, post_visit.pk, "panss", "single"])
    data = {f"item_{i.code}": "3" for i in registry.get("panss").items}
    data["item_p1"] = "4,5"
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "da"  # the middleware decides, per request
    page = client.post(url, data | {"complete": "1"}).content.decode()
    assert "Indtast et heltal." in page and "Intet blev gemt." in page


@pytest.mark.parametrize("language", ["da", "nl"])
def test_a_decimal_item_takes_the_decimal_comma_in_danish_and_dutch(language):
    insight = registry.get("insight")
    with translation.override(language):
        values, errors = clean(insight, {"awareness": "2,5", "relabelling": "3"}, complete=False)
        assert errors == {} and values == {"awareness": 2.5, "relabelling": 3.0}
        assert shown_value(2.5) == "2,5"


@pytest.mark.parametrize("language", ["en", "da", "nl"])
def test_a_whole_number_item_refuses_a_decimal_in_every_language(language):
    panss = registry.get("panss")
    with translation.override(language):
        values, errors = clean(panss, {"p1": "4,5", "p2": "4.5"}, complete=False)
    assert values == {} and set(errors) == {"p1", "p2"}
    assert errors["p1"] == "Enter a whole number."  # the error's English, whatever is shown


def test_english_still_takes_the_decimal_point():
    insight = registry.get("insight")
    with translation.override("en"):
        values, errors = clean(insight, {"awareness": "2.5"}, complete=False)
        assert errors == {} and values == {"awareness": 2.5}
        assert shown_value(2.5) == "2.5"


@pytest.mark.parametrize(
    "language, written", [("en", "%Y-%m-%d"), ("da", "%d.%m.%Y"), ("nl", "%d-%m-%Y")]
)
def test_dates_on_the_pages_are_written_as_the_reader_writes_them(
    client, danish, post_visit, assessor, language, written
):
    """The visit page's target and window are in the reader's short date format
    (imrtrial/formats): ISO in English, as the site always showed, 30.11.2026 in Danish and
    30-11-2026 in Dutch; no ISO date is left on the Danish or Dutch page."""
    client.force_login(assessor)
    page = get_in(client, reverse("assessments:visit", args=[danish.key, post_visit.pk]), language)
    days = (post_visit.target_date, post_visit.window_start, post_visit.window_end)
    sentence = "Target %(target)s, window %(start)s – %(end)s."
    with translation.override(language):
        sentence = translation.gettext(sentence)
    assert (
        sentence
        % dict(zip(("target", "start", "end"), (f"{d:{written}}" for d in days), strict=True))
        in page
    )
    if language != "en":
        assert not any(f"{day:%Y-%m-%d}" in page for day in days)
