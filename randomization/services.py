"""Randomization services. Contract: allocation rows are read and written only here (and in the
views and admin of this app, through the gate in imrtrial.access)."""

from .models import Allocation


def allocation_of(participant):
    """The participant's allocation, or None. Callers must have asked the gate first."""
    return Allocation.objects.filter(participant=participant).select_related("arm").first()
