"""Allocation data: the most sensitive rows of the site.

Nothing outside randomization/ (and the modules the lint test in tests/test_layering.py allows)
imports these models; everything else learns of an arm through imrtrial.access and the services
here.
"""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from imrtrial.models import Arm, Participant, Trial, Undeletable


class Stratum(models.Model):
    """One stratum of a trial (e.g. diagnosis=bipolar|centre=ballerup) and the next slot of its
    concealed sequence. Its row is the lock that serializes randomizations within the stratum."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="strata")
    key = models.CharField(max_length=200)
    next_slot = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trial", "key"], name="stratum_unique_key")]

    def __str__(self):
        return self.key


class Allocation(Undeletable):
    """A participant's arm. Never edited or deleted; a mistake is flagged with a reason."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="allocations")
    participant = models.OneToOneField(
        Participant, on_delete=models.PROTECT, related_name="allocation"
    )
    stratum = models.ForeignKey(Stratum, on_delete=models.PROTECT, related_name="allocations")
    slot = models.PositiveIntegerField()
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="allocations")
    randomization_number = models.CharField(max_length=30)
    confirmation_code = models.CharField(max_length=12)
    allocated_at = models.DateTimeField(auto_now_add=True)
    allocated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    in_error = models.BooleanField(default=False)
    in_error_reason = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stratum", "slot"], name="allocation_unique_slot"),
            models.UniqueConstraint(
                fields=["trial", "randomization_number"], name="allocation_unique_number"
            ),
        ]
        ordering = ["trial", "allocated_at"]

    def __str__(self):
        return f"{self.randomization_number} ({self.participant})"
