"""`{{ item.label|localized }}`: trial and instrument content in the reader's language."""

from django import template

from imrtrial.i18n_text import localized as _localized

register = template.Library()


@register.filter
def localized(text):
    """A label given in several languages (imrtrial.schema.Translated) in the active one;
    plain text as it is."""
    return _localized(str(text), getattr(text, "translations", None)) if text else text
