"""The investigator's link on the home page (imrtrial.home), with the rule of its page."""

from django.utils.translation import gettext_lazy as _

from imrtrial import access
from imrtrial.home import Link, register


def may_sign_somewhere(user, trial):
    return access.sites_where_may_sign(user, trial).exists()


register(
    Link(
        _("Casebooks to sign"),
        "signoff:signatures",
        may_sign_somewhere,
        order=38,
        style="btn-primary",
    )
)
