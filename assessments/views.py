"""The participant's case file: pages shared by blinded and unblinded roles.

Allocation data appears here only after imrtrial.access says the user may see it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render

from imrtrial import access
from imrtrial.audit import log_access
from imrtrial.models import AccessLog
from randomization.services import Refused, allocation_of

from . import services
from .forms import WithdrawalForm
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
        "withdrawals": participant.withdrawals.all(),  # narrowed below for blinded users
        "may_withdraw": _may_withdraw(request.user, participant),
    }
    if not access.may_see_allocation(request.user, trial, participant.site):
        # Stopping the intervention (level 1) happens in the IMR arm only: allocation-revealing.
        context["withdrawals"] = context["withdrawals"].exclude(level=1)
    else:
        context["allocation"] = allocation_of(participant)
        if context["allocation"]:
            log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, participant)
    return render(request, "assessments/participant_detail.html", context)


def _may_withdraw(user, participant):
    return access.has(user, "randomize", participant.trial, participant.site) or access.has(
        user, "manage_trial", participant.trial, participant.site
    )


@login_required
def withdrawal_new(request, trial_key, participant_id):
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    if not _may_withdraw(request.user, participant):
        raise Http404("Not found.")
    form = WithdrawalForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.withdraw(
                participant,
                d["level"],
                by=request.user,
                reason=d["reason"],
                withdrawn_on=d["withdrawn_on"],
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Withdrawal recorded.")
            return redirect("assessments:participant_detail", trial.key, participant.participant_id)
    return render(
        request,
        "assessments/withdrawal_form.html",
        {
            "trial": trial,
            "participant": participant,
            "form": form,
        },
    )
