"""Trial content in the reader's language: a label's English text is the fallback for every
reader, its translations ({"da": ..., "nl": ...}) come from the trial or instrument file. And
dates in messages written in Python, in the reader's format (imrtrial/formats)."""

import datetime

from django.conf import settings
from django.utils import formats, timezone, translation


def localized(english, translations, language=None):
    """The text in `language` (default: the active one, e.g. "da" or "da-dk"), else English."""
    if translations:
        language = (language or translation.get_language() or settings.LANGUAGE_CODE).lower()
        for code in (language, language.split("-")[0]):
            if code in translations:
                return translations[code]
    return english


def shown(text):
    """Text from a trial or instrument file (imrtrial.schema.Translated: English with its other
    languages) in the active language; plain text as it is."""
    return localized(str(text), getattr(text, "translations", None)) if text else text


def level_label(level):
    """A stratum level ({"code", "label", "translations"?} as the trial file gave it)."""
    return localized(level["label"], level.get("translations"))


def short_date(day):
    """A date in a message or e-mail, as the active language writes it: 2026-11-30 in English,
    30.11.2026 in Danish, 30-11-2026 in Dutch (the pages' SHORT_DATE_FORMAT). A moment (an
    aware datetime) is given as the site's local day, as the pages' date filter gives it, not
    the day in UTC."""
    if isinstance(day, datetime.datetime):
        day = timezone.localdate(day)
    return formats.date_format(day, "SHORT_DATE_FORMAT")
