"""Register and records data: values that belong to a period of a participant's life (a year of
hospital admissions from a national register), not to a visit.

A trial's datasets (`RegisterDataset`) are its configuration, copied from a preset when the
trial is loaded, so a later change to a preset never changes a running trial. Each import of a
file is an `ImportBatch` (who, when, why, the file's checksum); its rows are `RegisterRecord`s,
one per participant, dataset and period, never deleted, each with its history.

Nothing here names an arm: register data are collected alike for every participant.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from imrtrial.models import Participant, Trial, Undeletable


class RegisterDataset(models.Model):
    """One kind of register data a trial collects: how a file's row finds its participant, the
    periods a row may cover and the variables (registers.presets describes the fields)."""

    class KeyKind(models.TextChoices):
        PARTICIPANT_ID = "participant_id", _("Pseudonymous participant id")
        NATIONAL_ID = "national_id", _("National id (from the identifying details)")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="register_datasets")
    code = models.SlugField(max_length=40)
    label = models.CharField(max_length=200)
    source = models.CharField(max_length=300, blank=True)
    key_kind = models.CharField(max_length=20, choices=KeyKind.choices)
    key_column = models.SlugField(max_length=40)
    key_label = models.CharField(max_length=100)
    key_pattern = models.CharField(max_length=100, blank=True)  # of the normalized key
    periods = models.JSONField(default=list)
    variables = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="registerdataset_unique_code")
        ]
        ordering = ["trial", "code"]

    def __str__(self):
        return self.label

    @property
    def columns(self):
        """The columns a file of this dataset has, in order."""
        return [self.key_column, "period_start", "period_end", *(v["code"] for v in self.variables)]


class ImportBatch(Undeletable):
    """One file imported: what, by whom, when and why, and the checksum of the file itself."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="register_batches")
    dataset = models.ForeignKey(RegisterDataset, on_delete=models.PROTECT, related_name="batches")
    file_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()

    history = HistoricalRecords()

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.dataset.code}: {self.file_name} ({self.rows} rows)"


class RegisterRecord(Undeletable):
    """A participant's values of one dataset for one period."""

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="register_records"
    )
    dataset = models.ForeignKey(RegisterDataset, on_delete=models.PROTECT, related_name="records")
    period_start = models.DateField()
    period_end = models.DateField()
    values = models.JSONField(default=dict)  # {variable code: int, or ISO date text}
    batch = models.ForeignKey(ImportBatch, on_delete=models.PROTECT, related_name="records")

    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "dataset", "period_start", "period_end"],
                name="registerrecord_unique_period",
            ),
            models.CheckConstraint(
                condition=Q(period_start__lte=F("period_end")),
                name="registerrecord_period_ordered",
            ),
        ]
        ordering = ["dataset", "participant", "period_start"]

    def __str__(self):
        return f"{self.participant} {self.dataset.code} {self.period_start}..{self.period_end}"
