"""English pages keep the British formats the site always showed (it ran as en-gb before the
catalogues came): LANGUAGE_CODE is "en", the source language of the catalogues, and Django's own
"en" formats are American. Dates on English pages stay ISO (2026-11-30), as they always were:
the staff of an international trial read them without guessing which part is the day."""

from django.conf.locale.en_GB.formats import *  # noqa: F403

SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
