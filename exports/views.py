"""Dataset exports: ask for one, watch its progress, download it.

Blinded datasets go to holders of `export_blinded` (data managers, statisticians); the key and
the process dataset only to the key holder after lock (access.may_see_allocation_key). Everyone
else gets 404, and each user sees and downloads only the exports they asked for."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from imrtrial import access
from imrtrial.audit import log_access
from imrtrial.models import AccessLog, DatabaseLock, Perm

from . import services
from .forms import ExportForm, ReleaseForm
from .models import ExportRun


def _trial(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    if not access.may_open_exports(request.user, trial):  # the home page's link asks the same
        raise Http404(_("Not found."))
    return trial, access.may_see_allocation_key(request.user, trial)


@login_required
def export_list(request, trial_key):
    trial, may_release = _trial(request, trial_key)
    may_export = access.has(request.user, Perm.EXPORT_BLINDED, trial)
    form = ExportForm(prefix="export")
    release = ReleaseForm(prefix="release")
    if request.method == "POST":
        releasing = "release-dataset" in request.POST
        if releasing and not may_release:
            raise Http404(_("Not found."))
        if not releasing and not may_export:
            raise Http404(_("Not found."))
        bound = (ReleaseForm if releasing else ExportForm)(
            request.POST, prefix="release" if releasing else "export"
        )
        if bound.is_valid():
            try:
                run = services.request_export(
                    trial,
                    by=request.user,
                    dataset=bound.cleaned_data["dataset"],
                    format=bound.cleaned_data["format"],
                    reason=bound.cleaned_data.get("reason", ""),
                    ip_address=request.META.get("REMOTE_ADDR") or None,
                )
            except services.Refused as exc:
                bound.add_error(None, str(exc))
            else:
                return redirect("exports:detail", trial.key, run.pk)
        if releasing:
            release = bound
        else:
            form = bound
    runs = ExportRun.objects.filter(trial=trial, requested_by=request.user)[:50]
    return render(
        request,
        "exports/export_list.html",
        {
            "trial": trial,
            "form": form if may_export else None,
            "release": release if may_release else None,
            "key_holder_waits": access.has(request.user, Perm.RELEASE_ALLOCATION_KEY, trial)
            and not may_release,
            "runs": runs,
            # One query for the list, not one per export: the latest unlock of the database.
            "last_unlock": trial.database_locks.filter(action=DatabaseLock.Action.UNLOCKED)
            .order_by("-at")
            .values_list("at", flat=True)
            .first(),
        },
        status=400 if request.method == "POST" else 200,
    )


def _run(request, trial_key, pk):
    trial, _ = _trial(request, trial_key)
    return get_object_or_404(ExportRun, trial=trial, pk=pk, requested_by=request.user)


@login_required
def export_detail(request, trial_key, pk):
    run = _run(request, trial_key, pk)
    return render(
        request,
        "exports/export_detail.html",
        {
            "trial": run.trial,
            "run": run,
            "working": run.status in (ExportRun.Status.QUEUED, ExportRun.Status.RUNNING),
        },
    )


@login_required
def download(request, trial_key, pk):
    run = _run(request, trial_key, pk)
    if not services.may_download(run, request.user) or not run.path.exists():
        raise Http404(_("Not found."))
    action = AccessLog.Action.RELEASE_KEY if run.unblinded else AccessLog.Action.EXPORT
    log_access(
        request, run.trial, action, f"download of export {run.pk}", export=run.pk, sha256=run.sha256
    )
    return FileResponse(open(run.path, "rb"), as_attachment=True, filename=run.file_name)


urlpatterns = [
    path("<slug:trial_key>/exports/", export_list, name="list"),
    path("<slug:trial_key>/exports/<int:pk>/", export_detail, name="detail"),
    path("<slug:trial_key>/exports/<int:pk>/download/", download, name="download"),
]
