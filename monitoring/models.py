"""Source data verification (SDV): the trial's plan of which forms need it, and the monitors'
marks.

A mark is never edited or deleted. Whether it still holds is derived from the data, not stored:
it records a digest of the form's values when the source was checked, and a form whose values
differ now (or differed at any save since) is "SDV cleared by a change", whatever wrote the
change (monitoring.progress). So no write path, present or future, can forget to clear it.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from assessments.models import FormEntry
from imrtrial.models import Trial, Undeletable

from . import plan


def every_instrument():
    return plan.ALL


class SdvPlan(models.Model):
    """Which forms of the trial need SDV, from the trial's YAML (`source_data_verification:`).
    A trial without one needs every form verified."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="sdv_plan")
    # "all", or a list of instrument codes.
    instruments = models.JSONField(default=every_instrument)
    # The share of each site's participants whose forms need SDV, drawn by plan.sampled.
    sample_percent = models.PositiveSmallIntegerField(default=100)
    site_sample_percent = models.JSONField(default=dict, blank=True)  # {site code: percent}

    def __str__(self):
        return f"SDV plan of {self.trial}"

    def as_dict(self):
        return {
            "instruments": self.instruments,
            "sample_percent": self.sample_percent,
            "site_sample_percent": self.site_sample_percent,
        }

    @classmethod
    def of(cls, trial):
        """The trial's plan as monitoring.plan reads it."""
        found = cls.objects.filter(trial=trial).first()
        return found.as_dict() if found else dict(plan.EVERY_FORM)


class SourceVerification(Undeletable):
    """A monitor checked this form's values against the source documents on `source_checked_on`.
    The latest mark of an entry is its SDV; it holds while the values are those it digested."""

    entry = models.ForeignKey(FormEntry, on_delete=models.PROTECT, related_name="+")
    source_checked_on = models.DateField()
    digest = models.CharField(max_length=64)
    entry_version = models.PositiveIntegerField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["entry", "at"], name="sdv_entry_at")]
        ordering = ["entry", "at", "pk"]

    def __str__(self):
        return f"SDV of {self.entry} on {self.source_checked_on}"
