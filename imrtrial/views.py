"""Pages every role shares. Views parse, ask imrtrial.access, and render."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import access
from .models import AccessLog, Role

# What each role is here to do, shown on the home page. Only links to pages that exist.
_WORK = {
    Role.TRIAL_ADMIN: ["Configure sites, arms and staff in the trial administration."],
    Role.COORDINATOR: ["Screen and randomize callers; follow allocations at your sites."],
    Role.ASSESSOR: ["Enter interview ratings and questionnaires for your participants."],
    Role.FACILITATOR: ["Log IMR group sessions and attendance."],
    Role.FIDELITY_RATER: ["Rate IMR groups on the IMR Fidelity Scale."],
    Role.DATA_MANAGER: ["Verify and lock forms; export the blinded dataset."],
    Role.STATISTICIAN: ["Download the blinded dataset (arms coded A/B)."],
    Role.KEY_HOLDER: ["Hold the allocation key; release it after database lock."],
}


@login_required
def home(request):
    cards = []
    for trial in access.trials_of(request.user).order_by("name"):
        roles = sorted(access.roles_of(request.user, trial), key=list(Role).index)
        cards.append(
            {
                "trial": trial,
                "roles": [Role(role).label for role in roles],
                "work": [line for role in roles for line in _WORK[Role(role)]],
                "can_view_participants": access.has(request.user, "view_participants", trial),
                "can_see_allocations": access.may_see_allocation(request.user, trial),
                "can_view_audit": access.has(request.user, "view_audit", trial),
                "can_randomize": access.has(request.user, "randomize", trial),
                "can_see_imr_groups": access.may_see_allocation(request.user, trial),
                "can_see_reminders": access.has(request.user, "randomize", trial)
                or access.has(request.user, "verify_forms", trial),
                "can_enter": access.has(request.user, "enter_interview", trial)
                or access.has(request.user, "enter_staff_rating", trial),
                "can_export": access.has(request.user, "export_blinded", trial)
                or access.has(request.user, "release_allocation_key", trial),
                "can_upload_list": trial.method == trial.Method.UPLOADED_LIST
                and trial.status == trial.Status.SETUP
                and access.has(request.user, "release_allocation_key", trial),
            }
        )
    return render(request, "imrtrial/home.html", {"cards": cards})


@login_required
def access_log(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, "view_audit", trial)
    entries = AccessLog.objects.filter(trial=trial).select_related("user")
    if not access.may_see_allocation(request.user, trial):
        # Whose allocation an unblinded facilitator looked up hints at who is in IMR.
        entries = entries.filter(action=AccessLog.Action.EXPORT)
    entries = entries[:500]
    return render(request, "imrtrial/accesslog_list.html", {"trial": trial, "entries": entries})
