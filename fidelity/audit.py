"""What of IMR delivery the audit report shows (see imrtrial.audit.Source). All of it is
allocation-revealing: only auditors unblinded at the group's site see any of it."""

from django.utils.translation import gettext_lazy

from imrtrial.audit import Source, register

from .models import (
    Attendance,
    FidelityAssessment,
    FidelityRating,
    FollowUpCall,
    GroupMembership,
    ImrGroup,
    Session,
)


def _raw_scores_not_yet_shown(rows):
    """A raw rating's scores stay hidden until both raters are in, as on the rating pages
    (fidelity.measures.visible_ratings)."""
    raw = [r for r in rows if not r.is_consensus]
    complete = FidelityRating.objects.assessments_with_both_raw_in({r.assessment_id for r in raw})
    return {r.history_id: {"scores"} for r in raw if r.assessment_id not in complete}


register(
    Source(
        key="imrgroup",
        label=gettext_lazy("IMR group"),
        model=ImrGroup,
        trial="trial",
        site="site",
        describe=lambda row: row.name,
        unblinded=True,
    )
)
register(
    Source(
        key="groupmembership",
        label=gettext_lazy("IMR group membership"),
        model=GroupMembership,
        trial="group__trial",
        site="group__site",
        participant="participant",
        select_related=("participant", "group"),
        describe=lambda row: f"{row.participant.participant_id} in {row.group.name}",
        unblinded=True,
    )
)
register(
    Source(
        key="session",
        label=gettext_lazy("IMR session"),
        model=Session,
        trial="group__trial",
        site="group__site",
        select_related=("group",),
        describe=lambda row: f"{row.group.name} {row.date:%Y-%m-%d}",
        unblinded=True,
    )
)
register(
    Source(
        key="attendance",
        label=gettext_lazy("IMR attendance"),
        model=Attendance,
        trial="session__group__trial",
        site="session__group__site",
        participant="participant",
        select_related=("participant", "session__group"),
        describe=lambda row: (
            f"{row.participant.participant_id} at {row.session.group.name} "
            f"{row.session.date:%Y-%m-%d}"
        ),
        unblinded=True,
    )
)
register(
    Source(
        key="followupcall",
        label=gettext_lazy("IMR follow-up call"),
        model=FollowUpCall,
        trial="session__group__trial",
        site="session__group__site",
        participant="participant",
        select_related=("participant",),
        describe=lambda row: f"Call to {row.participant.participant_id}",
        unblinded=True,
    )
)
register(
    Source(
        key="fidelityassessment",
        label=gettext_lazy("Fidelity assessment"),
        model=FidelityAssessment,
        trial="group__trial",
        site="group__site",
        select_related=("group",),
        describe=lambda row: f"{row.group.name}: {row.get_kind_display()}",
        unblinded=True,
    )
)
register(
    Source(
        key="fidelityrating",
        label=gettext_lazy("Fidelity rating"),
        model=FidelityRating,
        trial="assessment__group__trial",
        site="assessment__group__site",
        select_related=("assessment__group",),
        describe=lambda row: (
            f"{row.assessment.group.name}: {'consensus' if row.is_consensus else 'raw rating'}"
        ),
        unblinded=True,
        masked=_raw_scores_not_yet_shown,
    )
)
