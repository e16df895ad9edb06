"""The register pages (data managers of every site): the trial's register datasets, the import
of a file (upload, the dry-run report, then the import with a reason) and each dataset's
batches. Blinded pages: register data carry no arm, and nothing here is computed from one."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from imrtrial import access
from imrtrial.errors import Refused

from . import checking, services
from .forms import RegisterFileForm
from .models import RegisterDataset

REPORT_ROWS_SHOWN = 200


def _trial(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    if not services.may_import(request.user, trial):
        raise Http404(_("Not found."))
    return trial


def _dataset(trial, code):
    return get_object_or_404(RegisterDataset, trial=trial, code=code)


@require_safe
@login_required
def dataset_list(request, trial_key):
    trial = _trial(request, trial_key)
    datasets = trial.register_datasets.all()
    return render(request, "registers/dataset_list.html", {"trial": trial, "datasets": datasets})


@require_safe
@login_required
def batch_list(request, trial_key, dataset):
    trial = _trial(request, trial_key)
    found = _dataset(trial, dataset)
    # A batch is the whole trial's: its author and reason are shown as any trial-level free text
    # is (imrtrial.access.text_for), in case the importer is unblinded somewhere.
    batches = [
        (
            batch,
            access.author_label(request.user, batch.by, trial, None),
            access.text_for(request.user, batch.reason, batch.by, trial, None),
            access.text_for(request.user, batch.file_name, batch.by, trial, None),
        )
        for batch in found.batches.select_related("by")
    ]
    return render(
        request,
        "registers/batch_list.html",
        {"trial": trial, "dataset": found, "batches": batches},
    )


@login_required
def import_file(request, trial_key, dataset):
    trial = _trial(request, trial_key)
    found = _dataset(trial, dataset)
    report, confirm = None, None
    if request.method == "POST":
        form = RegisterFileForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            upload = data["file"]
            report = checking.check_file(found, upload.read(), upload.name)
            if data["action"] == form.IMPORT:
                if data["checked"] != report.sha256:
                    form.add_error("file", _("This is not the file you checked: check it first."))
                elif report.ok:
                    try:
                        batch = services.import_rows(report, by=request.user, reason=data["reason"])
                    except Refused as exc:
                        form.add_error(None, str(exc))
                    else:
                        messages.success(
                            request,
                            _("%(rows)s rows imported from %(file_name)s.")
                            % {"rows": batch.rows, "file_name": batch.file_name},
                        )
                        return redirect("registers:batches", trial.key, found.code)
            if report.ok and not form.errors:
                confirm = RegisterFileForm(
                    initial={"action": form.IMPORT, "checked": report.sha256}
                )
    else:
        form = RegisterFileForm()
    if confirm is not None:
        form = None
    return render(
        request,
        "registers/import.html",
        {
            "trial": trial,
            "dataset": found,
            "form": form,
            "confirm": confirm,
            "report": report,
            "rows_shown": report.rows[:REPORT_ROWS_SHOWN] if report else [],
        },
    )
