"""English pages keep the British date and number formats the site always showed (it ran as
en-gb before the catalogues came): LANGUAGE_CODE is "en", the source language of the catalogues,
and Django's own "en" formats are American."""

from django.conf.locale.en_GB.formats import *  # noqa: F403
