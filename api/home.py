"""The trial administrator's link to the trial's API tokens (imrtrial.home), with its
page's rule."""

from imrtrial import access
from imrtrial.home import Link, register
from imrtrial.models import Perm


def may_manage_tokens(user, trial):
    return access.has(user, Perm.MANAGE_TRIAL, trial)


register(
    Link(
        "API tokens", "api_trial_tokens", may_manage_tokens, order=95, style="btn-outline-secondary"
    )
)
