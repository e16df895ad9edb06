"""Trial content in the reader's language: a label's English text is the fallback for every
reader, its translations ({"da": ..., "nl": ...}) come from the trial or instrument file."""

from django.conf import settings
from django.utils import translation


def localized(english, translations, language=None):
    """The text in `language` (default: the active one, e.g. "da" or "da-dk"), else English."""
    if translations:
        language = (language or translation.get_language() or settings.LANGUAGE_CODE).lower()
        for code in (language, language.split("-")[0]):
            if code in translations:
                return translations[code]
    return english


def level_label(level):
    """A stratum level ({"code", "label", "translations"?} as the trial file gave it)."""
    return localized(level["label"], level.get("translations"))
