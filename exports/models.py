"""The record of every export: who asked for what, when, how many rows, and the file's checksum.

Rows are never deleted (an export is a disclosure); the file itself lives in settings.EXPORT_DIR
and is read only through exports.views.download, which asks the gate again."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from imrtrial.models import DatabaseLock, Trial, Undeletable


class ExportRun(Undeletable):
    class Dataset(models.TextChoices):
        LONG = "long", _("Blinded dataset, long (one row per participant per timepoint)")
        WIDE = "wide", _("Blinded dataset, wide (one row per participant)")
        PROCESS = "process", _("Process dataset (arm, attendance, exposure, fidelity)")
        KEY = "key", _("Allocation key (which code is which arm)")

    class Format(models.TextChoices):
        CSV = "csv", _("CSV (UTF-8) with codebook, zipped")
        SAV = "sav", _("SPSS (.sav)")
        DTA = "dta", _("Stata (.dta)")
        ODM = "odm", _("CDISC ODM 1.3.2 XML")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    # The key and the process dataset reveal the arm: released by the key holder after lock.
    UNBLINDED = (Dataset.PROCESS, Dataset.KEY)

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="exports")
    dataset = models.CharField(max_length=10, choices=Dataset.choices)
    format = models.CharField(max_length=4, choices=Format.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    done_rows = models.PositiveIntegerField(default=0)  # progress while running
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # The trial's status when the export was asked for ("locked": from the locked database).
    database_status = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(dataset="key") | models.Q(format="csv"),
                name="export_key_is_csv",
            ),
            models.CheckConstraint(
                condition=~models.Q(format="odm") | models.Q(dataset="long"),
                name="export_odm_is_long",
            ),
        ]

    def unlocks_since(self):
        """Database unlocks after this export was asked for: its data may since have changed."""
        return self.trial.database_locks.filter(
            action=DatabaseLock.Action.UNLOCKED, at__gt=self.requested_at
        ).select_related("by")

    def __str__(self):
        return f"{self.get_dataset_display()} as {self.get_format_display()}"

    @property
    def unblinded(self):
        return self.dataset in self.UNBLINDED

    @property
    def percent(self):
        if self.status == self.Status.DONE:
            return 100
        total = self.rows or 0
        return min(99, round(100 * self.done_rows / total)) if total else 0

    @property
    def path(self):
        return settings.EXPORT_DIR / self.trial.key / self.file_name
