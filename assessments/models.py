"""Case record form entries: the clinical data the audit trail protects most."""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from imrtrial.models import Participant, Undeletable


class FormEntry(Undeletable):
    """One instrument filled in for one participant at one timepoint."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        COMPLETE = "complete", "Complete"
        VERIFIED = "verified", "Verified"
        LOCKED = "locked", "Locked"

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="form_entries"
    )
    instrument = models.CharField(max_length=40)
    timepoint = models.CharField(max_length=40)
    values = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "instrument", "timepoint"], name="formentry_unique"
            )
        ]

    def __str__(self):
        return f"{self.participant} {self.instrument} @ {self.timepoint}"
