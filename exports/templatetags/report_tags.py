"""The home page's link to the reports (asking the same rule as the report pages), and the
formatting of shares and scores on them."""

from django import template

from ..report_views import may_see_reports

register = template.Library()


@register.inclusion_tag("exports/report_link.html")
def reports_link(user, trial):
    return {"trial": trial, "show": may_see_reports(user, trial)}


@register.filter
def pct(value):
    """A share (Fraction) as 83%; an em dash when there is nothing to divide."""
    return "—" if value is None else f"{float(value) * 100:.0f}%"


@register.filter
def score2(value):
    return "—" if value is None else f"{float(value):.2f}"
