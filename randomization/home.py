"""The phone desk's links on the home page (imrtrial.home), with the rules of its pages."""

from django.utils.translation import gettext_lazy as _

from imrtrial import access
from imrtrial.home import Link, register
from imrtrial.models import Perm, Trial


def may_use_desk(user, trial):
    return access.has(user, Perm.RANDOMIZE, trial)


def may_upload_list(user, trial):
    return (
        trial.method == Trial.Method.UPLOADED_LIST
        and trial.status == Trial.Status.SETUP
        and access.has(user, Perm.RELEASE_ALLOCATION_KEY, trial)
    )


register(Link(_("Phone desk"), "randomization:desk", may_use_desk, order=10, style="btn-primary"))
register(Link(_("Allocations"), "randomization:allocations", access.may_see_allocation, order=40))
register(Link(_("Upload allocation list"), "randomization:list_upload", may_upload_list, order=60))
