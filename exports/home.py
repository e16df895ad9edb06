"""The exports' and reports' links on the home page (imrtrial.home), with their pages' rules."""

from django.utils.translation import gettext_lazy as _

from imrtrial import access
from imrtrial.home import Link, register

register(Link(_("Exports"), "exports:list", access.may_open_exports, order=70))
register(Link(_("Reports"), "exports:reports", access.may_see_reports, order=85))
