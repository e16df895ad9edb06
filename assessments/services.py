"""CRF services. Contract: every write is atomic, attributed to a user, and after a form is
complete carries a reason, which the audit trail keeps with the old and new values."""

from django.db import transaction

from imrtrial.audit import ReasonRequired, attribute

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
