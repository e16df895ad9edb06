"""Making and revoking personal API tokens.

Contract: a token is made by its own user, for one trial in which they hold a role, with a
non-empty subset of the permissions they hold there now, and an expiry of at most
MAX_DAYS; a user who must sign in with two factors gets one only once enrolled. The token's
text is returned once, from `create_token`, and never stored: only its digest. Its user or the
trial's administrator (manage_trial) revokes it; every change is kept by simple-history with
who and why. A refusal (imrtrial.errors.Refused) writes nothing.
"""

import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access, twofactor
from imrtrial.audit import attribute
from imrtrial.errors import Refused
from imrtrial.models import Perm
from randomization import services as desk

from .models import ApiToken, RandomizationKey, digest

MAX_DAYS = 365


def permissions_held(user, trial):
    """The permissions the user holds in the trial now, at any site, in Perm order."""
    return [perm for perm in Perm if access.has(user, perm, trial)]


@transaction.atomic
def create_token(user, trial, *, name, permissions, days):
    """(token row, the token's text to show once)."""
    if twofactor.requires_two_factor(user) and not twofactor.is_enrolled(user):
        raise Refused(
            _(
                "Your role needs two-factor sign-in: set it up (Two-factor sign-in) before making "
                "an API token."
            )
        )
    held = permissions_held(user, trial)
    if not held:
        raise Refused(_("You hold no role in this trial."))
    chosen = {Perm(p) for p in permissions}
    if not chosen:
        raise Refused(_("Choose what the token may do."))
    if extra := chosen - set(held):
        names = ", ".join(sorted(str(Perm(p).label) for p in extra))
        raise Refused(
            _("You do not hold these permissions in %(trial)s: %(names)s.")
            % {"trial": trial, "names": names}
        )
    if not 1 <= days <= MAX_DAYS:
        raise Refused(_("A token lasts from 1 to %(max)d days.") % {"max": MAX_DAYS})
    name = name.strip()
    if not name or "\x00" in name:
        raise Refused(_("Name the token (what it is for)."))
    key_id, secret, text = ApiToken.new_secret()
    token = ApiToken(
        user=user,
        trial=trial,
        name=name[:80],
        key_id=key_id,
        secret_digest=digest(secret),
        permissions=[p.value for p in Perm if p in chosen],
        expires_at=timezone.now() + datetime.timedelta(days=days),
    )
    attribute(token, by=user, reason="created").save()
    return token, text


def may_revoke(by, token):
    return token.user_id == by.pk or access.has(by, Perm.MANAGE_TRIAL, token.trial)


@transaction.atomic
def revoke_token(token, *, by, reason=""):
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if not may_revoke(by, token):
        raise Refused(_("Only the token's owner or the trial administrator revokes it."))
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.revoked_by = by
    why = reason.strip() or ("revoked by its owner" if by.pk == token.user_id else "revoked")
    attribute(token, by=by, reason=why).save(update_fields=["revoked_at", "revoked_by"])
    return token


@transaction.atomic
def randomize_with_key(participant, *, by, key, baseline_completed_on=None):
    """Randomize (or read back) `participant` under the client's idempotency `key`, in one
    transaction: the key is claimed first (a concurrent request with the same key waits on its
    unique row), so a key of another participant is refused before anyone is randomized, and a
    refused randomization leaves no key behind. The caller has asked the gate."""
    stored, _created = RandomizationKey.objects.get_or_create(
        user=by, trial=participant.trial, key=key, defaults={"participant": participant}
    )
    if stored.participant_id != participant.pk:
        raise Refused(_("This key was used to randomize another participant: use a new key."))
    return desk.randomize(participant, by=by, baseline_completed_on=baseline_completed_on)
