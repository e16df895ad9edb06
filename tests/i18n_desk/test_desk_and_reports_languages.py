"""The phone desk, the screening form and the CONSORT report in Danish and Dutch (issue 18).

The language comes from the request, as a browser or the language switcher sends it: the
language cookie and Accept-Language. The catalogues are compiled from the committed .po files
into a temporary directory, so the test reads exactly what is committed.

Where the settings do not yet have LocaleMiddleware, LANGUAGES and LOCALE_PATHS, the test adds
them for itself (LocaleMiddleware right after SessionMiddleware), and changes nothing else.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from imrtrial.models import Role
from tests.exports.test_reports import page_text, world  # noqa: F401 (the CONSORT scenario)
from tests.factories import grant, make_person, make_user

pytestmark = pytest.mark.django_db

LOCALE = Path(django_settings.BASE_DIR) / "locale"
LOCALE_MIDDLEWARE = "django.middleware.locale.LocaleMiddleware"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"


@pytest.fixture(scope="module")
def compiled_locale(tmp_path_factory):
    """The committed catalogues, compiled (msgfmt --check refuses a malformed entry)."""
    if not shutil.which("msgfmt"):
        pytest.skip("msgfmt (GNU gettext) is not installed")
    root = tmp_path_factory.mktemp("locale")
    for lang in ("da", "nl"):
        out = root / lang / "LC_MESSAGES"
        out.mkdir(parents=True)
        subprocess.run(
            [
                "msgfmt",
                "--check",
                "-o",
                str(out / "django.mo"),
                str(LOCALE / lang / "LC_MESSAGES" / "django.po"),
            ],
            check=True,
        )
    return root


@pytest.fixture(autouse=True)
def _languages(settings, compiled_locale):
    middleware = list(settings.MIDDLEWARE)
    if LOCALE_MIDDLEWARE not in middleware:
        middleware.insert(middleware.index(SESSION_MIDDLEWARE) + 1, LOCALE_MIDDLEWARE)
    settings.MIDDLEWARE = middleware
    settings.LANGUAGES = [("en", "English"), ("da", "Dansk"), ("nl", "Nederlands")]
    # Setting these clears Django's translation caches (django.test.signals).
    settings.LOCALE_PATHS = [compiled_locale]


@pytest.fixture
def study(danish):
    return danish


def in_language(client, lang):
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = lang
    return {"HTTP_ACCEPT_LANGUAGE": lang}


DESK = {
    "da": ["Telefonvagt", "Ny screening", "Søg", "De 50 seneste screeninger på dine centre."],
    "nl": [
        "Telefoondienst",
        "Nieuwe screening",
        "Zoeken",
        "De 50 meest recente screenings op uw locaties.",
    ],
}
SCREENING_FORM = {
    "da": ["Ny screening", "Inklusions- og eksklusionskriterier", "Gem screening", "Screenet den"],
    "nl": ["Nieuwe screening", "In- en exclusiecriteria", "Screening opslaan", "Gescreend op"],
}
CONSENT_REFUSED = {
    "da": "Samtykke kræver alle tre: dato, version af erklæringen og hvem der indhentede det.",
    "nl": "Toestemming vraagt alle drie: de datum, de formulierversie en wie de toestemming "
    "verkreeg.",
}


def visible(response):
    return page_text(response.content)


@pytest.mark.parametrize("lang", ["da", "nl"])
def test_the_phone_desk_and_the_screening_form_speak_the_callers_language(
    client, danish, coordinator, lang
):
    client.force_login(coordinator)
    headers = in_language(client, lang)
    desk = client.get(reverse("randomization:desk", args=[danish.key]), **headers)
    assert desk.status_code == 200
    assert f'lang="{lang}"' in desk.content.decode() or desk["Content-Language"] == lang
    text = visible(desk)
    for phrase in DESK[lang]:
        assert phrase in text, phrase
    for english in ("Phone desk", "New screening", "Next caller", "The 50 most recent"):
        assert english not in text, english
    assert not re.search(r"\bFind\b", text)

    url = reverse("randomization:screen", args=[danish.key])
    form = client.get(url, **headers)
    text = visible(form)
    for phrase in SCREENING_FORM[lang]:
        assert phrase in text, phrase
    for english in ("Save screening", "Eligibility criteria", "Identifying details", "Screened on"):
        assert english not in text, english

    # A form error comes back in the same language.
    site = danish.sites.first()
    refused = client.post(
        url,
        {"site": site.pk, "screened_on": "2026-11-02", "consent_date": "2026-11-02"},
        **headers,
    )
    assert refused.status_code == 200
    assert CONSENT_REFUSED[lang] in visible(refused)


CONSORT = {
    "da": {
        "heading": "CONSORT-flowdiagram",
        "boxes": ["Vurderet for egnethed (n=17)", "Alle randomiserede (n=11)"],
        "table": ["Ekskluderet før randomisering", "Intention-to-treat-population"],
        "button": "Hent SVG",
    },
    "nl": {
        "heading": "CONSORT-stroomdiagram",
        "boxes": ["Beoordeeld op geschiktheid (n=17)", "Alle gerandomiseerden (n=11)"],
        "table": ["Uitgesloten vóór randomisatie", "Intention-to-treat-populatie"],
        "button": "SVG downloaden",
    },
}
# Words that name or hint at an arm, in all three languages (the English assert_blind list of
# tests/exports/test_reports.py, and their translations).
ARM_WORDS = (
    r"\b(imr|interven\w*|kontrol\w*|controle\w*|behandling|level 1|niveau 1|received|modtog"
    r"|ontving)\b"
)


@pytest.mark.parametrize("lang", ["da", "nl"])
def test_the_pooled_consort_report_is_translated_and_names_no_arm(world, client, lang):  # noqa: F811
    manager = make_user(f"blind-dm-{lang}")
    grant(manager, world.trial, Role.DATA_MANAGER)
    client.force_login(manager)
    headers = in_language(client, lang)
    page = client.get(reverse("exports:report_consort", args=[world.trial.key]), **headers)
    assert page.status_code == 200
    text = visible(page)
    expected = CONSORT[lang]
    assert expected["heading"] in text
    assert expected["button"] in text
    for phrase in expected["boxes"] + expected["table"]:
        assert phrase in text, phrase
    for english in ("Download SVG", "Assessed for eligibility", "All randomized", "Definitions"):
        assert english not in text, english
    for arm in world.trial.arms.all():
        assert arm.label not in text
    assert not re.search(ARM_WORDS, text.lower())

    svg = client.get(reverse("exports:report_consort_svg", args=[world.trial.key]), **headers)
    drawn = svg.content.decode()
    assert expected["boxes"][0] in drawn and "Assessed for eligibility" not in drawn
    assert not re.search(ARM_WORDS, page_text(svg.content).lower())


def test_english_stays_the_default(client, danish):
    coordinator = make_person(danish, Role.COORDINATOR, username="desk-en")
    client.force_login(coordinator)
    text = visible(client.get(reverse("randomization:desk", args=[danish.key])))
    assert "Phone desk" in text and "New screening" in text
