from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from imrtrial import access
from imrtrial.audit import log_access
from imrtrial.models import AccessLog

from .models import Allocation


@login_required
def allocation_list(request, trial_key):
    """Allocations at the sites where the user is unblinded; 404 for everyone else."""
    trial = access.trial_or_404(request.user, trial_key)
    access.require_allocation_access(request.user, trial)
    sites = access.sites_where(request.user, "view_unblinded", trial)
    if trial.is_unblinded:
        sites = sites | access.sites_where(request.user, "view_unblinded_after_unblinding", trial)
    allocations = (
        Allocation.objects.filter(trial=trial, participant__site__in=sites)
        .select_related("participant", "participant__site", "arm", "allocated_by")
        .order_by("-allocated_at")
    )
    log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, "allocation list")
    return render(
        request, "randomization/allocation_list.html", {"trial": trial, "allocations": allocations}
    )
