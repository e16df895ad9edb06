"""The rules page (data managers): every rule of the trial, what it reads, how many records
break it (from the last run, at the reader's sites), and "Run now". A blinded page: nothing on
it is computed from, or differs by, the arms."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.models import Perm

from . import services
from .models import RuleRun
from .rules import rules_of


@require_safe
@login_required
def rule_list(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, Perm.VERIFY_FORMS, trial)
    sites = [
        str(pk)
        for pk in access.sites_where(request.user, Perm.VERIFY_FORMS, trial).values_list(
            "pk", flat=True
        )
    ]
    last = services.last_run(trial)
    latest = RuleRun.objects.filter(trial=trial).order_by("-created_at", "-pk").first()
    rows = []
    for rule in rules_of(trial):
        per_site = (last.breaking.get(rule.code) or {}) if last else {}
        rows.append((rule, sum(per_site.get(site, 0) for site in sites) if last else None))
    return render(
        request,
        "quality/rule_list.html",
        {
            "trial": trial,
            "rows": rows,
            "last": last,
            "latest": latest,
            "working": latest is not None
            and latest.status in (RuleRun.Status.QUEUED, RuleRun.Status.RUNNING)
            and latest.created_at >= timezone.now() - services.STALE_AFTER,
        },
    )


@login_required
def run_now(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, Perm.VERIFY_FORMS, trial)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if request.POST.get("run") != "now":  # the button's own value: anything else is not it
        return HttpResponseBadRequest("Press Run now on the rules page.")
    try:
        services.request_run(trial, by=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The rules are running: this page shows when they are done."))
    return redirect("quality:rules", trial.key)
