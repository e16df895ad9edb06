"""CRF services. Contract: every write is atomic, attributed to a user, and after a form is
complete carries a reason, which the audit trail keeps with the old and new values."""

from django.db import transaction

from imrtrial import access
from imrtrial.audit import ReasonRequired, attribute
from imrtrial.models import Participant
from randomization.models import IdentifyingDetails, Withdrawal
from randomization.services import Refused

from .models import FormEntry


@transaction.atomic
def save_form(entry, values, *, by, reason="", complete=False):
    """Save new values for a form entry; a complete form changes only with a reason."""
    if entry.pk:
        entry = FormEntry.objects.select_for_update().get(pk=entry.pk)
        if entry.status == FormEntry.Status.LOCKED:
            raise ReasonRequired("This form is locked and can no longer change.")
        if entry.status != FormEntry.Status.DRAFT and not reason.strip():
            raise ReasonRequired("A reason is required to change a completed form.")
    entry.values = values
    if complete:
        entry.status = FormEntry.Status.COMPLETE
    attribute(entry, by=by, reason=reason)
    entry.save()
    return entry


@transaction.atomic
def withdraw(participant, level, *, by, reason, withdrawn_on):
    """Record a withdrawal at one of the three protocol levels (DOMAIN.md 10.6).

    Level 3 erases the participant's clinical data (form values, their history, identifying
    details); the allocation, the pseudonymous participant row and this withdrawal record stay,
    so the sequence and the flow diagram remain intact. It lives here, downstream of
    randomization, because the erasure reaches the case record forms."""
    trial = participant.trial
    if not (
        access.has(by, "randomize", trial, participant.site)
        or access.has(by, "manage_trial", trial, participant.site)
    ):
        raise Refused("You may not record withdrawals for this participant.")
    if not reason.strip():
        raise Refused("Give the reason for the withdrawal.")
    level = Withdrawal.Level(level)
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    highest = participant.withdrawals.order_by("-level").values_list("level", flat=True).first()
    if highest is not None and highest >= level:
        raise Refused(f"This participant is already withdrawn at level {highest}.")
    erased = {}
    if level == Withdrawal.Level.CONSENT:
        erased = _erase_clinical_data(participant, by=by, reason=reason)
    Withdrawal.objects.create(
        participant=participant,
        level=level,
        withdrawn_on=withdrawn_on,
        reason=reason.strip(),
        recorded_by=by,
        erased=erased,
    )
    if level >= Withdrawal.Level.FOLLOW_UP:
        participant.status = Participant.Status.WITHDRAWN
        attribute(participant, by=by, reason=f"withdrawal level {level}: {reason}").save(
            update_fields=["status"]
        )
    return participant


def _erase_clinical_data(participant, *, by, reason):
    entries = FormEntry.objects.filter(participant=participant)
    entry_ids = list(entries.values_list("pk", flat=True))
    # The history of erased values must go too, or the erasure would erase nothing.
    history_rows, _ = FormEntry.history.filter(id__in=entry_ids).delete()
    for entry in entries:
        entry.values = {}
        attribute(entry, by=by, reason=f"erased: consent withdrawn ({reason})").save(
            update_fields=["values"]
        )
    details = IdentifyingDetails.objects.filter(screening__participant=participant).first()
    if details:
        IdentifyingDetails.history.filter(id=details.pk).delete()
        details.full_name = details.national_id = details.national_id_key = details.phone = ""
        attribute(details, by=by, reason="erased: consent withdrawn").save()
    return {
        "form_entries": len(entry_ids),
        "history_rows": history_rows,
        "identifying_details": bool(details),
    }
