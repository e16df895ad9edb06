"""The visit page's panel for the participant's own questionnaires (a tag, so that the
assessments app needs no import of this one)."""

from django import template

from assessments import registry
from imrtrial import access
from imrtrial.models import Perm

from .. import services
from ..models import Link

register = template.Library()


@register.inclusion_tag("selfreport/_visit_panel.html", takes_context=True)
def self_report_panel(context, trial, visit, entries=None):
    """`entries`: every entry of the visit's participant and timepoint, where the page has read
    them (services.open_forms then reads none)."""
    user = context["request"].user
    participant = visit.participant
    # As the services refuse a hand-over or a link (services._may_hand_over), from the visit
    # and participant the page already read.
    shown = (
        bool(services.self_report_codes(visit))
        and access.may_enter(user, participant, services.RATER)
        and participant.status not in participant.FOLLOW_UP_ENDED
        and not visit.missed
    )
    if not shown:
        return {"shown": False}
    # Only a list counts as the entries read: an undefined variable comes as "", which would
    # read as "nothing entered" and offer every form.
    open_codes = services.open_forms(
        visit, entries=entries if isinstance(entries, list | tuple) else None
    )
    return {
        "shown": True,
        "trial": trial,
        "visit": visit,
        "open": [registry.get(c) for c in open_codes],
        "channels": services.link_channels(services.details_of(participant)) if open_codes else [],
        "link": Link.objects.filter(visit=visit).first(),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("selfreport/_contact_link.html", takes_context=True)
def self_report_contact_link(context, trial, participant):
    """A link to the contact for questionnaires, for those who may see identifying details."""
    shown = access.has(context["request"].user, Perm.VIEW_IDENTIFYING, trial, participant.site)
    return {"shown": shown, "trial": trial, "participant": participant}
