"""IMR delivery's link on the home page (imrtrial.home): for the unblinded only, as its pages."""

from imrtrial import access
from imrtrial.home import Link, register

register(Link("IMR groups", "fidelity:groups", access.may_see_allocation, order=50))
