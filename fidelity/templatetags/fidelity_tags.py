"""Formatting of computed measures, and the attendance chart drawn as SVG on the server (the
CSP allows no script and no inline style, so geometry goes in SVG attributes)."""

from django import template
from django.utils.formats import number_format
from django.utils.translation import pgettext

register = template.Library()

WIDTH, HEIGHT = 640, 180
LEFT, BOTTOM, TOP = 32, 24, 10


@register.filter
def dec2(value):
    """A Fraction (score, mean, kappa) as 4.23 (4,23 in Danish and Dutch); an em dash for None.
    Rounded first, then given the language's decimal separator."""
    return "—" if value is None else number_format(f"{float(value):.2f}")


@register.filter
def percent(value):
    return "—" if value is None else f"{float(value) * 100:.0f}%"


@register.filter
def yes_no(value):
    return (
        "—"
        if value is None
        else (pgettext("measure", "yes") if value else pgettext("measure", "no"))
    )


@register.filter
def item_score(rating, item):
    return rating.item_scores().get(item, "—")


@register.inclusion_tag("fidelity/_attendance_chart.html")
def attendance_chart(sessions):
    """Bars per session: members (grey) and members present (blue), oldest on the left."""
    sessions = list(sessions)
    top = max([s.members for s in sessions] + [1])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(sessions), 1)
    bar_w = max(min(slot * 0.7, 40), 2)
    bars = []
    for i, s in enumerate(sessions):
        x = LEFT + i * slot + (slot - bar_w) / 2
        members_h = plot_h * s.members / top
        present_h = plot_h * s.present / top
        bars.append(
            {
                "session": s,
                "x": round(x, 1),
                "w": round(bar_w, 1),
                "members_y": round(TOP + plot_h - members_h, 1),
                "members_h": round(members_h, 1),
                "present_y": round(TOP + plot_h - present_h, 1),
                "present_h": round(present_h, 1),
            }
        )
    return {
        "bars": bars,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "top": TOP,
        "base": TOP + plot_h,
        "right": WIDTH - 8,
        "label_y": HEIGHT - 6,
        "max": top,
        "first": sessions[0] if sessions else None,
        "last": sessions[-1] if len(sessions) > 1 else None,
    }
