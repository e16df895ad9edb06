"""What of the safety event log the audit report shows (see imrtrial.audit.Source). All of it
is allocation-revealing: only auditors unblinded at the participant's site see any of it."""

from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import SafetyEvent

register(
    Source(
        key="safetyevent",
        label=gettext_lazy("Safety event"),
        model=SafetyEvent,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant",),
        describe=lambda row: f"{row.participant.participant_id} {row.get_category_display()}",
        unblinded=True,
        text_fields=("description",),
    )
)
