"""What of register data the audit report shows (see imrtrial.audit.Source): each imported file
(its batch: who, when, why, the file's checksum) and each record's history."""

from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import ImportBatch, RegisterRecord

register(
    Source(
        key="register_batch",
        label=gettext_lazy("Register data: imported files"),
        model=ImportBatch,
        trial="trial",
        select_related=("dataset",),
        describe=lambda row: f"{row.dataset.code}: {row.file_name} ({row.rows} rows)",
        text_fields=("reason", "file_name"),
    )
)
register(
    Source(
        key="register_record",
        label=gettext_lazy("Register data: records"),
        model=RegisterRecord,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant", "dataset"),
        describe=lambda row: (
            f"{row.participant.participant_id} {row.dataset.code} "
            f"{row.period_start:%Y-%m-%d} to {row.period_end:%Y-%m-%d}"
        ),
    )
)
