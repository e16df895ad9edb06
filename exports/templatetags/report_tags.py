"""The formatting of shares and scores on the report pages."""

from django import template

register = template.Library()


@register.filter
def pct(value):
    """A share (Fraction) as 83%; an em dash when there is nothing to divide."""
    return "—" if value is None else f"{float(value) * 100:.0f}%"


@register.filter
def score2(value):
    return "—" if value is None else f"{float(value):.2f}"
