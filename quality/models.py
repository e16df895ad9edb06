"""Data quality rules written in a trial's file, each nightly run of every rule, and the records
found breaking a rule with the system data query opened about each.

Rules read only what a blinded reader may: form values and scores, visit dates and windows,
the randomization date and withdrawals from follow-up or data use (quality.rules). Nothing
here holds or counts anything by arm."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from assessments.models import DataQuery, FormEntry, Visit
from imrtrial.models import Participant, Trial


class Severity(models.TextChoices):
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")


class TrialRule(models.Model):
    """A rule from the trial's file (`quality_rules:`), checked when the trial was loaded."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="quality_rules")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    message = models.CharField(max_length=300)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    forms = models.JSONField(default=list)  # instrument codes it reads; the first is queried
    timepoints = models.JSONField(default=list)  # where it applies; empty: at every visit
    expression = models.TextField()  # its `check:` (assessments.expressions)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="trialrule_unique_code")
        ]
        ordering = ["trial", "order"]

    def __str__(self):
        return self.name


class RuleRun(models.Model):
    """One run of every rule over a trial (nightly, or "Run now"), with what it found."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="rule_runs")
    # Empty for the nightly schedule.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # {rule code: records breaking it now}, locked records included.
    breaking = models.JSONField(default=dict, blank=True)
    opened = models.PositiveIntegerField(default=0)
    closed = models.PositiveIntegerField(default=0)
    skipped_locked = models.PositiveIntegerField(default=0)
    failed_records = models.PositiveIntegerField(default=0)
    # {instrument: {item: [median, MAD, n]}} of the counting entries: the built-in outlier
    # rule's yardstick, also used when a form is saved.
    stats = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["trial", "status", "-finished_at"], name="rulerun_last")]

    def __str__(self):
        return f"Rule run {self.pk} ({self.get_status_display()})"


class Finding(models.Model):
    """A record found breaking a rule, and the system query about it: one per rule and record,
    so a second run opens nothing new. `state`: open (its query is waiting or was just opened),
    fixed (the data no longer breaks the rule; a new break opens a new query), accepted (a data
    manager closed or cancelled the query while the data still breaks the rule: left alone)."""

    class State(models.TextChoices):
        OPEN = "open", _("Query open")
        FIXED = "fixed", _("No longer broken")
        ACCEPTED = "accepted", _("Closed by a data manager")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=80)
    key = models.CharField(max_length=120)  # the record: visit, form entry and item
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="+")
    entry = models.ForeignKey(
        FormEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    item = models.CharField(max_length=40, blank=True)
    query = models.ForeignKey(
        DataQuery, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "rule", "key"], name="finding_unique")
        ]

    def __str__(self):
        return f"{self.rule} {self.key}"
