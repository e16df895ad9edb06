"""Requesting and building exports. Every export is recorded (ExportRun, and AccessLog for the
audit report) before a byte is written, and built by a Celery task so a large trial does not
hold a web worker."""

import hashlib
import logging
import os

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from imrtrial import access
from imrtrial.celery import task_named
from imrtrial.errors import Refused
from imrtrial.models import AccessLog, Perm

from . import dataset as blinded
from . import register_data, released, writers
from .models import ExportRun

logger = logging.getLogger(__name__)
# Queued by name: exports.tasks imports this module to build the file, so this module does not
# import it back (tests/test_layering.py refuses import cycles).
BUILD_EXPORT = "exports.tasks.build_export"
EXTENSIONS = {"csv": "zip", "sav": "sav", "dta": "dta", "odm": "xml"}


def check_may_export(trial, *, by, dataset, format):
    if dataset not in ExportRun.Dataset.values or format not in ExportRun.Format.values:
        raise Refused(_("Choose a dataset and a format from the list."))
    if dataset in ExportRun.UNBLINDED:
        if not access.may_see_allocation_key(by, trial):
            raise Refused(
                _(
                    "The allocation key and the process dataset are released by the unblinded data "
                    "administrator, after the database is locked."
                )
            )
    elif not access.has(by, Perm.EXPORT_BLINDED, trial):
        raise Refused(_("You may not export this trial's data."))
    if dataset == ExportRun.Dataset.KEY and format != ExportRun.Format.CSV:
        raise Refused(_("The allocation key is released as CSV."))
    if format == ExportRun.Format.ODM and dataset != ExportRun.Dataset.LONG:
        raise Refused(_("ODM holds the blinded dataset (visits and forms), not this one."))
    if format == ExportRun.Format.ODM and not access.may_export_every_site(by, trial):
        raise Refused(_("ODM exports cover every site; ask for CSV, SPSS or Stata for your sites."))


@transaction.atomic
def request_export(trial, *, by, dataset, format, reason="", ip_address=None):
    check_may_export(trial, by=by, dataset=dataset, format=format)
    if dataset in ExportRun.UNBLINDED and not reason.strip():
        raise Refused(_("Say why the allocation key or process data are being released."))
    run = ExportRun.objects.create(
        trial=trial,
        dataset=dataset,
        format=format,
        requested_by=by,
        reason=reason.strip(),
        database_status=trial.status,
    )
    run.file_name = f"{trial.key}-{dataset}-{run.pk}.{EXTENSIONS[format]}"
    run.save(update_fields=["file_name"])
    AccessLog.objects.create(
        user=by,
        trial=trial,
        action=AccessLog.Action.RELEASE_KEY if run.unblinded else AccessLog.Action.EXPORT,
        target=f"export {run.pk}: {dataset} as {format}",
        detail={"export": run.pk, "dataset": dataset, "format": format, "reason": run.reason},
        ip_address=ip_address,
    )
    transaction.on_commit(lambda: _queue(run.pk))
    return run


def _queue(run_pk):
    try:
        task_named(BUILD_EXPORT).delay(run_pk)
    except Exception as exc:  # the broker is down: the run says so, nothing is half-made
        logger.exception("Export %s could not be queued", run_pk)
        ExportRun.objects.filter(pk=run_pk).update(
            status=ExportRun.Status.FAILED, error=f"Could not queue the export: {exc}"[:500]
        )


def dataset_for(run):
    trial = run.trial
    sites = access.sites_where(run.requested_by, Perm.EXPORT_BLINDED, trial)
    if run.dataset == ExportRun.Dataset.LONG:
        return blinded.Dataset(trial, "long", sites=sites)
    if run.dataset == ExportRun.Dataset.WIDE:
        return blinded.Dataset(trial, "wide", sites=sites)
    if run.dataset == ExportRun.Dataset.PROCESS:
        return released.ProcessDataset(trial)
    return released.KeyDataset(trial)


NOTES = """{trial} ({registration})
{dataset}, exported {when} by {user}.

Pseudonymous ids only; no identifying details. The arm is a neutral code (A/B); which code is
which arm is held by the unblinded data administrator and released after the database lock.
Missing-value codes are written as the code itself (see the codebook's missing_codes column);
an empty cell is an item not answered, a form not entered, or a value not applicable.
Free-text items are not exported: they can reveal the allocation or a person's identity.
Visit status is as of the export date.
"""


REGISTER_NOTES = """
Register data (periods of a participant's life, not visits) are in their own files, one per
dataset: <name>-register-<dataset>.csv with its codebook; a row per participant and period,
joined to the main file by participant_id. They are in the CSV export only.
"""


def register_tables(run):
    """The register data tables of a blinded export, of the sites its requester exports."""
    sites = access.sites_where(run.requested_by, Perm.EXPORT_BLINDED, run.trial)
    return register_data.register_tables(run.trial, sites)


def build(run_pk):
    """Write the export's file, record its rows and checksum. Safe to run twice: a run already
    done is left alone. In English whatever the requester's language: the files, their notes
    and codebooks are not translated (a task run eagerly would otherwise inherit a page's)."""
    with translation.override("en"):
        return _build(run_pk)


def _build(run_pk):
    run = ExportRun.objects.select_related("trial", "requested_by").get(pk=run_pk)
    if run.status == ExportRun.Status.DONE:
        return run
    # Asked again at build time: a role withdrawn since the request gets nothing.
    try:
        check_may_export(run.trial, by=run.requested_by, dataset=run.dataset, format=run.format)
    except Refused as exc:
        return _fail(run, str(exc))
    data = dataset_for(run)
    total = len(data)
    ExportRun.objects.filter(pk=run.pk).update(
        status=ExportRun.Status.RUNNING, started_at=timezone.now(), rows=total, done_rows=0
    )

    def progress(done, _total):
        ExportRun.objects.filter(pk=run.pk).update(done_rows=done)

    path = run.path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    label = f"{run.trial.name}: {run.get_dataset_display()}"
    try:
        if run.format == ExportRun.Format.CSV:
            notes = NOTES.format(
                trial=run.trial.name,
                registration=run.trial.registration_id,
                dataset=run.get_dataset_display(),
                when=timezone.localtime().strftime("%Y-%m-%d %H:%M"),
                user=run.requested_by.get_username(),
            )
            tables = register_tables(run) if not run.unblinded else []
            if tables:
                notes += REGISTER_NOTES
            with open(partial, "wb") as out:
                rows = writers.write_csv_bundle(
                    data, out, stem=path.stem, notes=notes, progress=progress, tables=tables
                )
        elif run.format == ExportRun.Format.SAV:
            rows = writers.write_sav(data, partial, file_label=label, progress=progress)
        elif run.format == ExportRun.Format.DTA:
            rows = writers.write_dta(data, partial, file_label=label, progress=progress)
        else:
            from . import odm

            with open(partial, "wb") as out:
                subjects = odm.write_odm(run.trial, out, progress=progress)
            rows = subjects * max(len(data.timepoints), 1)
        os.replace(partial, path)
    except Exception as exc:
        logger.exception("Export %s failed", run.pk)
        partial.unlink(missing_ok=True)
        return _fail(run, f"The export failed: {exc}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    ExportRun.objects.filter(pk=run.pk).update(
        status=ExportRun.Status.DONE,
        rows=rows,
        done_rows=rows,
        columns=len(data.columns),
        size=path.stat().st_size,
        sha256=digest.hexdigest(),
        finished_at=timezone.now(),
        error="",
    )
    run.refresh_from_db()
    return run


def _fail(run, message):
    ExportRun.objects.filter(pk=run.pk).update(
        status=ExportRun.Status.FAILED, error=message[:500], finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def may_download(run, user):
    """Only the person who asked for an export downloads it, and only while they still may."""
    if run.requested_by_id != user.pk or run.status != ExportRun.Status.DONE:
        return False
    try:
        check_may_export(run.trial, by=user, dataset=run.dataset, format=run.format)
    except Refused:
        return False
    return True
