"""The rules page's link on the home page (imrtrial.home), with the page's own rule."""

from django.utils.translation import gettext_lazy as _

from imrtrial.home import Link, register

from .services import may_run

register(Link(_("Data quality rules"), "quality:rules", may_run, order=45))
