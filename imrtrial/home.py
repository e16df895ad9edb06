"""The home page's links, contributed by each app with the rule its own page asks.

An app registers its pages in its own `home.py` (`register(Link(...))`), the way it registers
its audit sources, so this app never reaches up into a later app's templates or rules, and a
link shows exactly when its page would open: `visible` is the same function of imrtrial.access
(or of the app) that the page's view calls.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy

from . import access
from .models import Perm


@dataclass(frozen=True)
class Link:
    label: str
    url_name: str  # reversed with the trial's key
    visible: Callable  # (user, trial) -> bool
    order: int  # left to right
    style: str = "btn-outline-primary"


_links = {}
_discovered = False


def register(link):
    if link.url_name in _links:
        raise ValueError(f"Home link {link.url_name!r} is registered twice.")
    _links[link.url_name] = link
    return link


def links_for(user, trial):
    """[(label, url, style)] of the pages of `trial` this user may open, in order."""
    global _discovered
    if not _discovered:
        autodiscover_modules("home")
        _discovered = True
    return [
        (link.label, reverse(link.url_name, args=[trial.key]), link.style)
        for link in sorted(_links.values(), key=lambda link: link.order)
        if link.visible(user, trial)
    ]


def may_audit(user, trial):
    return access.has(user, Perm.VIEW_AUDIT, trial)


register(
    Link(
        gettext_lazy("Audit trail"),
        "audit_trail",
        may_audit,
        order=90,
        style="btn-outline-secondary",
    )
)
