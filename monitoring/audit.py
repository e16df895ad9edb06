"""What of source data verification the audit report shows (see imrtrial.audit.Source): every
mark, one event per row (marks are never changed). A clearing is not a row: it is the change of
the form's values, which the report shows among the form entries, with who, when and why."""

from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import SourceVerification

register(
    Source(
        key="sdv",
        label=gettext_lazy("Source data verification"),
        model=SourceVerification,
        trial="entry__participant__trial",
        site="entry__participant__site",
        participant="entry__participant",
        select_related=("entry__participant",),
        describe=lambda row: (
            f"{row.entry.participant.participant_id} {row.entry.instrument} @ "
            f"{row.entry.timepoint}: source checked on {row.source_checked_on:%Y-%m-%d}"
        ),
        history=False,
        at="at",
        by="by",
        # The digest of the values checked: with the values a blinded reader sees, it would
        # confirm a guess of free text they see only as "text exists".
        hidden_fields=("digest",),
    )
)
