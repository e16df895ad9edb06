"""The participant's case file: pages shared by blinded and unblinded roles.

Allocation data appears here only after imrtrial.access says the user may see it."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render

from imrtrial import access
from imrtrial.audit import log_access
from imrtrial.models import AccessLog
from randomization.services import allocation_of

from .models import FormEntry


@login_required
def participant_list(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, "view_participants", trial)
    participants = access.participants_visible_to(request.user, trial).select_related("site")
    by_site = participants.values("site__name").annotate(n=Count("id")).order_by("site__name")
    return render(
        request,
        "assessments/participant_list.html",
        {"trial": trial, "participants": participants, "by_site": by_site},
    )


@login_required
def participant_detail(request, trial_key, participant_id):
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    context = {
        "trial": trial,
        "participant": participant,
        "forms": FormEntry.objects.filter(participant=participant).order_by(
            "timepoint", "instrument"
        ),
        "allocation": None,
    }
    if access.may_see_allocation(request.user, trial, participant.site):
        context["allocation"] = allocation_of(participant)
        if context["allocation"]:
            log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, participant)
    return render(request, "assessments/participant_detail.html", context)
