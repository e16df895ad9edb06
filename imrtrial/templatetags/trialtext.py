"""`{{ item.label|localized }}`: trial and instrument content in the reader's language;
`{{ allocation.allocated_at|when_zoned }}`: a moment in the reader's format with its time zone."""

from django import template
from django.utils import formats, timezone

from imrtrial.i18n_text import shown

register = template.Library()


@register.filter
def localized(text):
    """A label given in several languages (imrtrial.schema.Translated) in the active one;
    plain text as it is."""
    return shown(text)


@register.filter
def when_zoned(moment):
    """A moment that is on record (an allocation, a signature) in the reader's short date and
    time format, with the time zone it is shown in: "30.11.2026 14:05 CET"."""
    if not moment:
        return ""
    moment = timezone.localtime(moment)
    shown = formats.date_format(moment, "SHORT_DATETIME_FORMAT")
    return f"{shown} {formats.date_format(moment, 'T')}"
