"""Importing register data. Contract: `import_rows(report, *, by, reason)` writes a checked file
(registers.checking.check_file) whole or not at all: in one transaction it checks the same text
again (so rows imported meanwhile, or a participant who withdrew meanwhile, stop it), refuses if
any problem remains, and writes one ImportBatch and a RegisterRecord per row, each with its
history (who, why). A locked database, or a locked casebook of any matched participant, refuses
(imrtrial.locking). The gate: the data manager of every site of the trial (`may_import`), since
one file holds participants of every site.
"""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history

from imrtrial import access
from imrtrial.audit import attribute
from imrtrial.errors import Refused
from imrtrial.locking import Scope, writes_clinical_data
from imrtrial.models import Perm

from . import checking
from .models import ImportBatch, RegisterRecord


def may_import(user, trial):
    """Register files and their batches: a data manager's, at every site of the trial."""
    return access.has_everywhere(user, Perm.VERIFY_FORMS, trial)


def may_open(user, trial):
    """The register pages (and the home page's link): a trial that has register datasets, and
    someone who may import them."""
    return trial.register_datasets.exists() and may_import(user, trial)


@writes_clinical_data(
    "registers.import_rows",
    lambda a: Scope(a["report"].dataset.trial_id, a["report"].participant_ids),
)
def import_rows(report, *, by, reason):
    dataset = report.dataset
    if not may_import(by, dataset.trial):
        raise Refused(_("Register data are imported by a data manager of every site of the trial."))
    reason = reason.strip()
    if not reason:
        raise Refused(_("Say why this file is imported (e.g. the register extract it is)."))
    fresh = checking.check_file(dataset, report.text.encode(), report.file_name)
    if not fresh.ok or fresh.participant_ids != report.participant_ids:
        raise Refused(
            _(
                "The file no longer passes the check (rows imported or participants changed "
                "meanwhile): check it again."
            )
        )
    batch = attribute(
        ImportBatch(
            trial=dataset.trial,
            dataset=dataset,
            file_name=report.file_name,
            sha256=report.sha256,
            rows=len(fresh.rows),
            by=by,
            reason=reason,
        ),
        by=by,
        reason=reason,
    )
    batch.save()
    records = [
        RegisterRecord(
            participant_id=row.participant,
            dataset=dataset,
            period_start=row.period_start,
            period_end=row.period_end,
            values=row.values,
            batch=batch,
        )
        for row in fresh.rows
    ]
    try:
        with transaction.atomic():  # a concurrent import of the same rows: refused, not a 500
            bulk_create_with_history(
                records, RegisterRecord, default_user=by, default_change_reason=reason
            )
    except IntegrityError:
        raise Refused(
            _("Some of these rows were imported meanwhile: check the file again.")
        ) from None
    return batch
