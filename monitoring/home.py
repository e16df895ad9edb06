"""Monitoring's link on the home page (imrtrial.home), with the rule its page asks."""

from django.utils.translation import gettext_lazy as _

from imrtrial import access
from imrtrial.home import Link, register


def may_see_sdv_progress(user, trial):
    return access.sdv_progress_sites(user, trial).exists()


register(
    Link(
        _("Source data verification"),
        "monitoring:progress",
        may_see_sdv_progress,
        order=37,
        style="btn-primary",
    )
)
