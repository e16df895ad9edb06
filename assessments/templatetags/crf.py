from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from imrtrial.templatetags.trialtext import localized

register = template.Library()


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key, "")


@register.simple_tag
def item_hint(item, instrument):
    """What the field takes, e.g. "1–7 · ND RF NA"."""
    if item.type in ("integer", "decimal"):
        hint = f"{item.min}–{item.max}"
    elif item.type == "choice":
        hint = ", ".join(f"{v} {localized(label)}" for v, label in item.choices)
    elif item.type == "boolean":
        hint = "yes / no"  # what entry accepts, in every language (definitions._convert)
    elif item.type == "date":
        hint = _("YYYY-MM-DD")
    else:
        hint = pgettext("item type", "text")
    return f"{hint} · {' '.join(instrument.missing_codes)}"


@register.simple_tag
def shown_scores(instrument, entry):
    """The form's scores as a reader sees them (assessments.definitions.shown_scores)."""
    from assessments.definitions import shown_scores as shown

    # A score in the reader's number format (22,50 in Danish and Dutch); "missing" in words.
    return [
        (score, _("missing") if text == "missing" else number_format(Decimal(text)), prorated)
        for score, text, prorated in shown(instrument, entry.values, entry.scores)
    ]


@register.filter
def any_prorated(rows):
    return any(prorated for _, _, prorated in rows)
