"""The register pages' link on the home page (imrtrial.home), with the pages' own rule."""

from django.utils.translation import gettext_lazy as _

from imrtrial.home import Link, register

from .services import may_open

register(Link(_("Register data"), "registers:datasets", may_open, order=46))
