"""Allocation facts for exports and reports, read in bulk.

The exports app may not import allocation models (tests/test_layering.py); it asks here. Every
function takes a trial and returns plain values; the caller has asked the gate already:
`export_blinded` for neutral codes, `imrtrial.access.may_see_allocation` for arm labels and
`imrtrial.access.may_see_allocation_key` for the key.
"""

from .models import Allocation, Screening


def neutral_codes(trial):
    """{participant pk: (export code A/B, in_error)} for every allocation of the trial."""
    return {
        pk: (code, in_error)
        for pk, code, in_error in Allocation.objects.filter(trial=trial).values_list(
            "participant_id", "arm__export_code", "in_error"
        )
    }


def arm_codes(trial):
    """{participant pk: arm code (e.g. "imr")}: allocation-revealing, for unblinded callers."""
    return dict(Allocation.objects.filter(trial=trial).values_list("participant_id", "arm__code"))


def key(trial):
    """[(export code, arm code, arm label, is_intervention)]: the allocation key itself."""
    return [
        (arm.export_code, arm.code, arm.label, arm.is_intervention)
        for arm in trial.arms.order_by("export_code")
    ]


def screenings(trial):
    """The screening log as dicts: number, site code, date, eligible, reasons, consented,
    participant pk (None if never enrolled)."""
    return [
        {
            "number": number,
            "site": site,
            "screened_on": on,
            "eligible": eligible,
            "exclusion_reasons": reasons,
            "consented": consent is not None,
            "participant": participant,
        }
        for number, site, on, eligible, reasons, consent, participant in Screening.objects.filter(
            trial=trial
        ).values_list(
            "screening_number",
            "site__code",
            "screened_on",
            "eligible",
            "exclusion_reasons",
            "consent_date",
            "participant_id",
        )
    ]


def in_error_reasons(trial):
    """{participant pk: reason} for allocations flagged as made in error. The reason is free text
    typed by unblinded staff and may name the arm (e.g. "the only one in her IMR group"): for
    callers the gate lets see allocation data, never for a blinded view."""
    return dict(
        Allocation.objects.filter(trial=trial, in_error=True).values_list(
            "participant_id", "in_error_reason"
        )
    )


def flagged_in_error(participant):
    """Is the participant's allocation flagged as made in error? Alike for both arms: the
    exclusion service asks it so a participant is not excluded twice."""
    return Allocation.objects.filter(participant=participant, in_error=True).exists()
