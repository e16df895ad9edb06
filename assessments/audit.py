"""What of the case record forms the audit report shows (see imrtrial.audit.Source)."""

from django.db.models import Q
from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from . import registry
from .models import Death, ExclusionAfterRandomization, FormEntry, Visit


def _staff_rated():
    """Entries of staff-rated instruments (registry.is_staff_rated): who entered them is
    allocation-revealing. Written as "not an instrument known to be rated by others", so an
    entry of an instrument no longer installed is hidden too, as is_staff_rated says."""
    known_not = [code for code in registry.all_instruments() if not registry.is_staff_rated(code)]
    return ~Q(instrument__in=known_not)


def free_text_items(row):
    """Keys of a form's items that no export carries (registry.unexported_items)."""
    return registry.unexported_items(row.instrument, row.values)


register(
    Source(
        key="visit",
        label=gettext_lazy("Visit"),
        model=Visit,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant", "timepoint"),
        describe=lambda row: f"{row.participant.participant_id} {row.timepoint.label}",
        # A visit is completed by whoever completes its last form, which may be a staff
        # rating (assessments.services._update_visit): its author is hidden like theirs.
        author_hidden=Q(history_change_reason="all forms complete"),
    )
)
register(
    Source(
        key="formentry",
        label=gettext_lazy("Form entry"),
        model=FormEntry,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant",),
        describe=lambda row: (
            f"{row.participant.participant_id} {row.instrument} @ {row.timepoint} ({row.kind})"
        ),
        author_hidden=_staff_rated,
        author_fields=("entered_by",),
        text_keys=free_text_items,
    )
)
register(
    Source(
        key="exclusion",
        label=gettext_lazy("Exclusion after randomization"),
        model=ExclusionAfterRandomization,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant",),
        describe=lambda row: f"{row.participant.participant_id} {row.get_category_display()}",
        # Who decided and why may name the programme ("the only member of the group"): read
        # only by those the gate lets read the author's text (imrtrial.access.may_read_text).
        text_fields=("reason", "decided_by"),
    )
)
register(
    Source(
        key="death",
        label=gettext_lazy("Death"),
        model=Death,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant",),
        describe=lambda row: f"{row.participant.participant_id} died",
    )
)
