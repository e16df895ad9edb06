"""The shipped instruments' labels in Danish and Dutch (issue: "Danish and Dutch labels for
instrument short item names and choices where their licence allows").

The rule the files follow:
- The public-domain IMR Scale (imrs_*) and the project's own forms are translated whole: every
  section, item, choice and score label has Danish and Dutch.
- Every other shipped instrument is a published, copyrighted scale: its item and choice labels
  stay the short English names (no translations), except a bare "Item N", which is our numbering,
  not the instrument's text ("Punkt N" in Danish, "Item N" in Dutch). Their section labels are our
  own words and are translated in every instrument.
- No Danish or Dutch label says a word that tells the arm (imrtrial.blinding_words: the page
  words, the programme's words, and both trials' arm labels and codes in every language).
Exports keep the English (the label is the English str; the translations ride along)."""

import re

import pytest
from django.urls import reverse

from assessments.definitions import load_dir
from imrtrial.blinding_words import names_arm, revealing_words

# compiled_catalogues: the autouse fixture that builds the .mo files the pages read.
from .test_in_danish_and_dutch import compiled_catalogues, get_in  # noqa: F401

# Public domain (IMR Scale, SAMHSA toolkit) or the project's own forms.
FULLY_TRANSLATED = {
    "imrs_client",
    "imrs_clinician",
    "imrs_p",
    "imrs_s",
    "baseline",
    "baseline_nl",
    "adverse_events",
    "employment",
    "service_use",
    "substance_use",
}
OTHER_LANGUAGES = ("da", "nl")
GENERIC_ITEM = re.compile(r"^Item (\d+)$")
# Words that name an arm however a page puts it, beyond the arms' own labels: a label must not
# say them even where no trial's arm happens to be called that.
ARM_WORDS = re.compile(
    r"(?i)\b(kontrol\w*|controle\w*|interventi\w*|sædvanlig behandling|standardbehandling"
    r"|gebruikelijke zorg|care as usual|treatment as usual|TAU|CAU|IMR-\w*)\b"
)

INSTRUMENTS = load_dir()


def labels(instrument):
    """(kind, where, label) for every label of the instrument."""
    for section_code, section_label, items in instrument.sections:
        yield "section", section_code, section_label
        for item in items:
            yield "item", item.code, item.label
            for value, choice_label in item.choices:
                yield "choice", f"{item.code}={value}", choice_label
    for score in instrument.scores:
        yield "score", score.code, score.label


def translations(label):
    return getattr(label, "translations", {}) or {}


def test_every_instrument_is_shipped():
    assert set(INSTRUMENTS) >= FULLY_TRANSLATED


@pytest.mark.parametrize("code", sorted(FULLY_TRANSLATED))
def test_a_free_instrument_has_danish_and_dutch_for_every_label(code):
    for kind, where, label in labels(INSTRUMENTS[code]):
        for language in OTHER_LANGUAGES:
            assert translations(label).get(language), f"{code} {kind} {where}: no {language}"


@pytest.mark.parametrize("code", sorted(set(INSTRUMENTS) - FULLY_TRANSLATED))
def test_a_copyrighted_instrument_keeps_its_english_item_names(code):
    for kind, where, label in labels(INSTRUMENTS[code]):
        if kind == "choice":
            assert not translations(label), f"{code} {where}: the instrument's own anchor"
        elif kind == "item":
            if number := GENERIC_ITEM.match(str(label)):
                n = number[1]
                assert translations(label) in ({}, {"da": f"Punkt {n}", "nl": f"Item {n}"})
            else:
                assert not translations(label), f"{code} {where}: the instrument's short name"


@pytest.mark.parametrize("code", sorted(INSTRUMENTS))
def test_section_labels_are_ours_and_in_every_language(code):
    for kind, where, label in labels(INSTRUMENTS[code]):
        if kind == "section":
            assert set(OTHER_LANGUAGES) <= set(translations(label)), f"{code} {where}"


def test_no_danish_or_dutch_label_tells_the_arm(danish, dutch):
    words = revealing_words(danish) + revealing_words(dutch)
    found = []
    for code, instrument in INSTRUMENTS.items():
        for kind, where, label in labels(instrument):
            for language, text in translations(label).items():
                hit = names_arm(text, danish, words) or ARM_WORDS.search(text)
                if hit:
                    found.append(f"{code} {kind} {where} ({language}): {text!r}: {hit}")
    assert not found, "\n".join(found)


def test_exports_keep_the_english():
    item = INSTRUMENTS["imrs_p"].item("i1")
    assert str(item.label) == "Item 1: progress towards goals"
    assert translations(item.label)["da"] == "Punkt 1: fremskridt mod mål"


PAGE = {
    "da": ["Punkt 1: fremskridt mod mål", "Punkt 2: viden om psykisk sygdom", "Punkter"],
    "nl": ["Item 1: vooruitgang richting doelen", "Item 3: betrokkenheid van naasten"],
}


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["da", "nl"])
def test_the_imr_scale_entry_page_shows_the_readers_language(
    client, danish, post_visit, assessor, language
):
    client.force_login(assessor)
    url = reverse("assessments:entry", args=[danish.key, post_visit.pk, "imrs_p", "first"])
    page = get_in(client, url, language)
    for text in PAGE[language]:
        assert text in page
    assert "progress towards goals" not in page


@pytest.mark.parametrize(
    "language, name",
    [
        ("en", "Illness Management and Recovery Scale, patient version (IMRS-P)"),
        ("da", "Illness Management and Recovery-skalaen, patientversion (IMRS-P)"),
        ("nl", "Illness Management and Recovery Schaal, patiëntversie (IMRS-P)"),
    ],
)
def test_a_free_instruments_name_is_in_the_readers_language(
    client, danish, post_visit, assessor, language, name
):
    """The entry page's heading and the visit page name the instrument in the reader's
    language; the name a file gives in English stays what exports write."""
    from django.utils.html import escape

    from assessments import registry

    client.force_login(assessor)
    entry = reverse("assessments:entry", args=[danish.key, post_visit.pk, "imrs_p", "first"])
    visit = reverse("assessments:visit", args=[danish.key, post_visit.pk])
    for url in (entry, visit):
        assert escape(name) in get_in(client, url, language)
    english = "Illness Management and Recovery Scale, patient version (IMRS-P)"
    assert str(registry.get("imrs_p").name) == english
