"""The one gate for who may see and do what.

Every view, queryset, template context, export, e-mail and admin screen asks this module; none
re-implements a rule. Storage is Django's own: a role is a Group whose permissions say what the
role may do (created by migration imrtrial 0002), and a Membership row scopes a user's role to a
trial and to one site or to all of them.

Blinding rule: "allocation-revealing" data is anything from which a participant's arm can be
learned (the allocation, IMR group membership, attendance, fidelity of a participant's group, the
randomization confirmation). Only holders of `view_unblinded`, or of
`view_unblinded_after_unblinding` once the trial is unblinded, may see it. Superusers get no
exemption: a system administrator is not unblinded by being one.
"""

from django.contrib.auth.models import Group
from django.http import Http404

from .models import Membership, Participant, Site, Trial, UnblindingIncident

_CACHE_ATTR = "_imrtrial_access_cache"


def _grants(user, trial):
    """{site_id or None: set of permission codenames} for the user's active roles in the trial.

    Cached on the user object, which Django builds anew for every request."""
    if not user.is_authenticated or not user.is_active:
        return {}
    cache = user.__dict__.setdefault(_CACHE_ATTR, {})
    if trial.pk not in cache:
        rows = Membership.objects.filter(user=user, trial=trial, active=True).values_list(
            "site_id", "role"
        )
        roles = {role for _, role in rows}
        perms_of_role = {}
        for name, codename in Group.objects.filter(name__in=roles).values_list(
            "name", "permissions__codename"
        ):
            perms_of_role.setdefault(name, set())
            if codename:
                perms_of_role[name].add(codename)
        grants = {}
        for site_id, role in rows:
            grants.setdefault(site_id, set()).update(perms_of_role.get(role, ()))
        cache[trial.pk] = grants
    return cache[trial.pk]


def forget(user):
    """Drop the cached grants, after a membership of this user changed."""
    user.__dict__.pop(_CACHE_ATTR, None)


def has(user, perm, trial, site=None):
    """May the user do `perm` in the trial, at `site` (None: at some site of the trial)?"""
    grants = _grants(user, trial)
    if site is None:
        return any(perm in perms for perms in grants.values())
    site_id = site.pk if isinstance(site, Site) else site
    return perm in grants.get(None, ()) or perm in grants.get(site_id, ())


def sites_where(user, perm, trial):
    """The sites of the trial at which the user may do `perm`."""
    grants = _grants(user, trial)
    if perm in grants.get(None, ()):
        return Site.objects.filter(trial=trial)
    ids = [site_id for site_id, perms in grants.items() if site_id and perm in perms]
    return Site.objects.filter(trial=trial, pk__in=ids)


def trials_of(user):
    """Trials in which the user holds any active role."""
    if not user.is_authenticated:
        return Trial.objects.none()
    return Trial.objects.filter(memberships__user=user, memberships__active=True).distinct()


def roles_of(user, trial):
    """The user's active roles in the trial, as Role values."""
    if not user.is_authenticated:
        return set()
    return set(
        Membership.objects.filter(user=user, trial=trial, active=True).values_list(
            "role", flat=True
        )
    )


def may_see_allocation(user, trial, site=None):
    """May the user see allocation-revealing data (for participants of `site`)?"""
    if has(user, "view_unblinded", trial, site):
        return True
    return trial.is_unblinded and has(user, "view_unblinded_after_unblinding", trial, site)


def may_see_allocation_key(user, trial):
    """May the user see which neutral export code (A/B) is which arm?

    Only the unblinded data administrator, and only after the database is locked."""
    return trial.status == Trial.Status.LOCKED and has(user, "release_allocation_key", trial)


def participants_visible_to(user, trial):
    """Participants the user may see at all: those of the sites where they may view them."""
    return Participant.objects.filter(
        trial=trial, site__in=sites_where(user, "view_participants", trial)
    )


def participant_or_404(user, trial, participant_id):
    """The participant, if the user may see them; otherwise 404, so existence is not revealed."""
    try:
        return (
            participants_visible_to(user, trial)
            .select_related("site")
            .get(participant_id=participant_id)
        )
    except Participant.DoesNotExist:
        raise Http404("No such participant.") from None


def trial_or_404(user, trial_key):
    try:
        return trials_of(user).get(key=trial_key)
    except Trial.DoesNotExist:
        raise Http404("No such trial.") from None


def require(user, perm, trial, site=None):
    """404 unless the user may do `perm`. A 404 (not 403) tells a blinded user nothing about
    whether the page or object exists."""
    if not has(user, perm, trial, site):
        raise Http404("Not found.")


def require_allocation_access(user, trial, site=None):
    if not may_see_allocation(user, trial, site):
        raise Http404("Not found.")


def may_enter(user, participant, rater):
    """May the user enter an instrument of this rater kind for this participant?

    Interview ratings need a blinded assessor the participant has not unblinded; staff ratings
    (e.g. the IMRS clinician version) need an unblinded staff role."""
    trial, site = participant.trial, participant.site
    if rater == "staff":
        return has(user, "enter_staff_rating", trial, site)
    if not has(user, "enter_interview", trial, site):
        return False
    if rater == "assessor_interview":
        return not UnblindingIncident.objects.filter(
            participant=participant, assessor=user
        ).exists()
    return True
