"""What of randomization the audit report shows (see imrtrial.audit.Source)."""

from django.db.models import Q
from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import Allocation, IdentifyingDetails, Screening, Withdrawal

register(
    Source(
        key="screening",
        label=gettext_lazy("Screening"),
        model=Screening,
        trial="trial",
        site="site",
        participant="participant",
        describe=lambda row: row.screening_number,
    )
)
register(
    Source(
        key="identifying",
        label=gettext_lazy("Identifying details"),
        model=IdentifyingDetails,
        trial="screening__trial",
        site="screening__site",
        participant="screening__participant",
        select_related=("screening",),
        describe=lambda row: f"Screening {row.screening.screening_number}",
        # Everything that names or reaches the person: their year of birth is the check a
        # link asks (selfreport); their language and consent are not identifying.
        identifying_fields=(
            "full_name",
            "national_id",
            "national_id_key",
            "phone",
            "email",
            "birth_year",
        ),
    )
)
register(
    Source(
        key="allocation",
        label=gettext_lazy("Allocation"),
        model=Allocation,
        trial="trial",
        site="participant__site",
        participant="participant",
        select_related=("participant",),
        describe=lambda row: f"{row.randomization_number} ({row.participant.participant_id})",
        unblinded=True,
        # The slot is the position in the concealed sequence: with the arms it shows where
        # blocks end, and so helps predict the next allocation.
        hidden_fields=("slot",),
        text_fields=("in_error_reason",),
    )
)
register(
    Source(
        key="withdrawal",
        label=gettext_lazy("Withdrawal"),
        model=Withdrawal,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant",),
        describe=lambda row: row.participant.participant_id,
        # Withdrawals are never changed: each row is one event. Stopping the intervention
        # (level 1) happens in the IMR arm only.
        history=False,
        at="recorded_at",
        by="recorded_by",
        revealing=Q(pk__in=Withdrawal.objects.stopped_intervention().values("pk")),
        text_fields=("reason",),
    )
)
