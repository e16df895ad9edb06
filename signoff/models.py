"""Investigator signatures on casebooks (21 CFR Part 11 §11.50 / §11.200, ICH E6(R3) 2.12):
who signed (printed name and account), when, what the signature means, and what was signed.

What was signed is kept as a digest of the data of record at that moment (the counting form
entries' ids and values, signoff.digest): a signature is valid while the data still has that
digest, so no write path can change signed data without the signature reading as invalidated.
The moment a write is seen to invalidate it is recorded too (`invalidated_at`, with the reason),
for the audit trail; the digest stays the rule.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from assessments.models import Visit
from imrtrial.models import Participant, Trial, Undeletable, UndeletableQuerySet


class SignoffSetting(models.Model):
    """The trial's sign-off rules, from the optional `signoff:` section of its YAML file."""

    trial = models.OneToOneField(Trial, on_delete=models.PROTECT, related_name="signoff_setting")
    # A casebook may be locked only once its investigator's signature of it is valid.
    lock_requires_signature = models.BooleanField(default=False)

    history = HistoricalRecords()

    def __str__(self):
        return f"Sign-off rules of {self.trial}"


class SignatureQuerySet(UndeletableQuerySet):
    def latest_per_scope(self):
        """[the newest signature of each casebook and of each visit] (the one that counts).
        Chosen in Python, not by DISTINCT ON, so the SQLite demo runs it too: a participant has
        a few signatures per visit at most."""
        latest = {}
        for signature in self.order_by("signed_at", "pk"):
            latest[signature.participant_id, signature.visit_id] = signature
        return list(latest.values())


class Signature(Undeletable):
    """A site investigator's electronic signature of one visit of a casebook, or of the whole
    casebook (`visit` empty). Never changed but to record that it was invalidated; a new
    signature is a new row."""

    class State(models.TextChoices):
        SIGNED = "signed", _("Signed")
        INVALIDATED = "invalidated", _("Signature invalidated: to sign again")
        NOT_SIGNED = "not_signed", _("Not signed")

    MEANING_VISIT = (
        "I have reviewed the data of this visit and confirm that they are complete and "
        "accurate to the best of my knowledge."
    )
    MEANING_CASEBOOK = (
        "I have reviewed the data of this casebook and confirm that they are complete and "
        "accurate to the best of my knowledge."
    )

    participant = models.ForeignKey(
        Participant, on_delete=models.PROTECT, related_name="signatures"
    )
    visit = models.ForeignKey(
        Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="signatures"
    )
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures"
    )
    printed_name = models.CharField(max_length=150)
    signed_at = models.DateTimeField(default=timezone.now)
    meaning = models.TextField()
    # sha256 (hex) of the signed data of record: signoff.digest.
    digest = models.CharField(max_length=64)
    # What the signer saw: [{"instrument", "timepoint", "entry", "status"}] of the forms covered.
    forms = models.JSONField(default=list)
    # Second factor used, as the record of how the signer was identified (11.200(a)).
    method = models.CharField(max_length=40, default="password")
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidation = models.CharField(max_length=200, blank=True)

    objects = SignatureQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        indexes = [models.Index(fields=["participant", "visit", "-signed_at"])]
        ordering = ["-signed_at", "-pk"]

    def __str__(self):
        what = self.visit.timepoint.label if self.visit_id else "casebook"
        return f"Signature of {self.participant} {what} by {self.printed_name}"
