"""IMR delivery's link on the home page (imrtrial.home): for the unblinded only, as its pages."""

from django.utils.translation import gettext_lazy as _

from imrtrial import access
from imrtrial.home import Link, register

register(Link(_("IMR groups"), "fidelity:groups", access.may_see_allocation, order=50))
