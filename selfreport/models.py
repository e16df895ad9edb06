"""The participant's own questionnaires: a tablet handed over at a visit, and personal links.

What a participant types is saved as a form entry like any other (assessments.services
.save_entry: the same validation, scoring, audit, locks and queries), marked with how it came
(FormEntry.entered_via); these tables hold only the hand-overs, the links and the messages.

A link's token is never stored: only its SHA-256 (staff.models.token_digest), as an
invitation's, and the nonce it is made from with the server's secret. Nothing here names an
arm, and both arms' participants get the same rows.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_noop


class HandOver(models.Model):
    """The assessor handed the tablet to the participant for the visit's self-report forms.

    While the session points to an open hand-over (selfreport.middleware), every other page of
    the site is out of reach; it ends with the assessor's password."""

    visit = models.ForeignKey(
        "assessments.Visit", on_delete=models.PROTECT, related_name="hand_overs"
    )
    instruments = models.JSONField(default=list)  # the codes handed over, in order
    language = models.CharField(max_length=8, choices=settings.LANGUAGES)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"Hand-over at {self.visit}"


class Link(models.Model):
    """A personal link to the open self-report forms of one visit, sent to the participant."""

    class Channel(models.TextChoices):
        EMAIL = "email", gettext_noop("E-mail")
        SMS = "sms", gettext_noop("Text message")

    # How many wrong answers to the check before the link is blocked.
    MAX_FAILED_CHECKS = 5

    visit = models.ForeignKey("assessments.Visit", on_delete=models.PROTECT, related_name="links")
    # The token is HMAC-SHA256(server secret, nonce): 32 bytes no one can make from the
    # database alone. The sender makes it again from the nonce when the message goes out
    # (selfreport.services.token_of); the page finds the link by the token's SHA-256.
    nonce = models.CharField(max_length=64, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=5, choices=Channel.choices)
    instruments = models.JSONField(default=list)  # the codes the link opens, in order
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The end of the visit window (the site's local midnight after its last day).
    expires_at = models.DateTimeField()
    failed_checks = models.PositiveSmallIntegerField(default=0)
    blocked_at = models.DateTimeField(null=True, blank=True)  # too many wrong answers
    revoked_at = models.DateTimeField(null=True, blank=True)  # a newer link replaced it
    finished_at = models.DateTimeField(null=True, blank=True)  # every form complete

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Link for {self.visit} ({self.channel})"

    def is_usable(self, now=None):
        now = now or timezone.now()
        return (
            self.expires_at > now
            and self.blocked_at is None
            and self.revoked_at is None
            and self.finished_at is None
        )


class Message(models.Model):
    """One message to a participant, written to this outbox before anything is sent: the
    link itself (number 0) and the reminders (1, 2...). The unique key makes queueing
    idempotent; the sender claims rows with SKIP LOCKED and marks a row sent in the
    transaction that claimed it, after the provider accepted it: each message goes once."""

    class Kind(models.TextChoices):
        LINK = "link", gettext_noop("Link")
        REMINDER = "reminder", gettext_noop("Reminder")

    link = models.ForeignKey(Link, on_delete=models.PROTECT, related_name="messages")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    number = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Not sent and never retried: the participant stopped messages, finished, or the link
    # no longer works; last_error says which.
    dropped_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["link", "kind", "number"], name="message_unique")
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(sent_at__isnull=True, dropped_at__isnull=True),
                name="selfreport_message_pending",
            )
        ]

    def __str__(self):
        return f"{self.kind} {self.number} of {self.link}"
