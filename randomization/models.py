"""Allocation data: the most sensitive rows of the site.

Nothing outside randomization/ (and the modules the lint test in tests/test_layering.py allows)
imports these models; everything else learns of an arm through imrtrial.access and the services
here.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from imrtrial.models import (
    Arm,
    HardDeleteForbidden,
    Participant,
    Site,
    Trial,
    Undeletable,
    UndeletableQuerySet,
)


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


class AllocationNotice(models.Model):
    """The allocation notice of one allocation, waiting to be sent: written in the allocation's
    own transaction (randomization.statements), so that a notice exists exactly when its
    allocation does, and sent afterwards by the sweep (services.send_pending_notices), which
    asks the gate then. Replaces a Celery message published after commit: no broker round trip
    on the phone desk's call, and a broker outage at that moment loses no notice.

    Tells the arm: a notice of the intervention arm has recipients and may fail (attempts,
    last_error), one of the other arm has none and never does. So, like Allocation, it has no
    admin, API, export or audit page (tests/security/test_admin_scoping.py asks)."""

    allocation = models.OneToOneField(
        Allocation, on_delete=models.PROTECT, primary_key=True, related_name="notice"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    def __str__(self):
        return str(self.allocation_id)


class Screening(models.Model):
    """One person screened for the trial, eligible or not: the screening log.

    Eligibility is computed from the answers by the screen service, never typed."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="screenings")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="screenings")
    screening_number = models.CharField(max_length=20)
    screened_on = models.DateField()
    referral_source = models.CharField(max_length=120, blank=True)
    answers = models.JSONField(default=dict)  # {criterion code: true/false}
    eligible = models.BooleanField()
    exclusion_reasons = models.JSONField(default=list, blank=True)  # criterion texts
    consent_date = models.DateField(null=True, blank=True)
    consent_form_version = models.CharField(max_length=30, blank=True)
    consent_obtained_by = models.CharField(max_length=120, blank=True)
    # Another screening of this trial with the same national id, flagged for the coordinator.
    possible_duplicate_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    participant = models.OneToOneField(
        Participant, on_delete=models.PROTECT, null=True, blank=True, related_name="screening"
    )
    screened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = UndeletableQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "screening_number"], name="screening_unique_number"
            )
        ]
        ordering = ["trial", "-created_at"]

    def __str__(self):
        return self.screening_number

    def delete(self, *args, **kwargs):
        raise HardDeleteForbidden("The screening log is never deleted.")

    @property
    def consented(self):
        return self.consent_date is not None


class IdentifyingDetails(models.Model):
    """Who a screened person is. Kept apart from the pseudonymous record, shown only to roles
    with `view_identifying`, and never exported."""

    screening = models.OneToOneField(
        Screening, on_delete=models.PROTECT, related_name="identifying"
    )
    full_name = models.CharField(max_length=200, blank=True)
    national_id = models.CharField(max_length=40, blank=True)
    # Normalized national id, for the duplicate check (digits and letters only, upper case).
    national_id_key = models.CharField(max_length=40, blank=True, db_index=True)
    phone = models.CharField(max_length=40, blank=True)
    # For the participant's own questionnaires (selfreport): where a link may be sent, the
    # check the link asks (the year of birth), the language to write in, and whether the
    # participant agreed to links and reminders at all. Identifying, like the rest of the row.
    email = models.EmailField(blank=True)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES)
    agreed_to_links = models.BooleanField(default=False)
    # The participant stopped all messages (the one-click opt-out in every message).
    messages_stopped_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    def __str__(self):
        return f"Identifying details of {self.screening}"


class WithdrawalQuerySet(UndeletableQuerySet):
    def follow_up(self):
        """Withdrawals from follow-up (level 2) or from data use (level 3). Both arms have
        them alike, so these are the withdrawals a blinded reader may see and count."""
        return self.filter(level__in=Withdrawal.FOLLOW_UP_LEVELS)

    def stopped_intervention(self):
        """Stopping the intervention (level 1). Only the intervention arm has one to stop, so
        these rows reveal the arm: for readers the gate lets see allocation data only."""
        return self.filter(level=Withdrawal.Level.INTERVENTION)


class Withdrawal(models.Model):
    """A participant's withdrawal, at one of the three protocol levels (DOMAIN.md 10.6)."""

    class Level(models.IntegerChoices):
        INTERVENTION = 1, _("Stops the intervention; follow-up continues")
        FOLLOW_UP = 2, _("Stops intervention and follow-up; data kept")
        CONSENT = 3, _("Withdraws consent for data use; clinical data erased")

    # The levels that do not depend on the arm (WithdrawalQuerySet.follow_up).
    FOLLOW_UP_LEVELS = (Level.FOLLOW_UP, Level.CONSENT)

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="withdrawals"
    )
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    withdrawn_on = models.DateField()
    reason = models.TextField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    recorded_at = models.DateTimeField(auto_now_add=True)
    # For level 3: what was erased (counts of rows), so the erasure itself is on record.
    erased = models.JSONField(default=dict, blank=True)

    objects = WithdrawalQuerySet.as_manager()

    class Meta:
        ordering = ["participant", "recorded_at"]

    def __str__(self):
        return f"{self.participant}: level {self.level}"

    def delete(self, *args, **kwargs):
        raise HardDeleteForbidden("Withdrawals are never deleted.")


class ListEntry(models.Model):
    """One slot of an allocation list uploaded by the trial statistician. Concealed like the
    generated sequence: no page or export shows it."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="list_entries")
    stratum_key = models.CharField(max_length=200)
    slot = models.PositiveIntegerField()
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "stratum_key", "slot"], name="listentry_unique_slot"
            )
        ]

    def __str__(self):
        return f"{self.stratum_key} #{self.slot}"
