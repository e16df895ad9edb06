"""The formatting of shares and scores on the report pages."""

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def pct(value):
    """A share (Fraction) as 83%; an em dash when there is nothing to divide."""
    return "—" if value is None else f"{float(value) * 100:.0f}%"


@register.filter
def score2(value):
    """A score as 4.23, with the decimal separator of the page's language (4,23 in Danish)."""
    return "—" if value is None else number_format(f"{float(value):.2f}")
