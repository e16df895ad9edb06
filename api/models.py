"""Personal API tokens, and the idempotency keys of randomizations asked through the API.

A token is `imrt_<id>_<secret>`: the id (public, unique) finds the row, the secret (256 bits
from `secrets`) proves possession. Only the SHA-256 digest of the secret is stored. A slow
password hash (argon2) is for low-entropy secrets people choose; a 256-bit random secret
cannot be guessed or brute-forced from its digest, and a fast digest keeps every API request
cheap. The token is shown once, when made, and cannot be read back.

A token belongs to one user and one trial and carries a chosen subset of the permissions the
user held there when it was made (`permissions`, Perm values). What it may do on a request is
that subset intersected with what the user holds at that moment, asked of the gate
(imrtrial.access.narrow): a withdrawn role takes effect on the next request.
"""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from imrtrial.models import Participant, Trial

PREFIX = "imrt"


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens"
    )
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=80)
    key_id = models.CharField(max_length=16, unique=True)
    secret_digest = models.CharField(max_length=64)
    permissions = models.JSONField(default=list)  # Perm values: the token's scope
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # Written with an UPDATE on each request, not a save: it is not a change to audit.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ApiTokenQuerySet.as_manager()
    # Made, revoked, by whom: kept like clinical rows. Neither the digest nor the use time.
    history = HistoricalRecords(excluded_fields=["secret_digest", "last_used_at"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({PREFIX}_{self.key_id}…, {self.user})"

    @property
    def is_active(self):
        return self.revoked_at is None and self.expires_at > timezone.now()

    @classmethod
    def new_secret(cls):
        """(key id, secret, the token as the user copies it)."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        return key_id, secret, f"{PREFIX}_{key_id}_{secret}"

    def matches(self, secret):
        return hmac.compare_digest(self.secret_digest, digest(secret))


class RandomizationKey(models.Model):
    """A client's idempotency key for one randomization through the API: the same key again
    answers with the same participant's result, and never randomizes anyone else."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=100)
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "trial", "key"], name="randomization_key_unique"
            )
        ]

    def __str__(self):
        return f"{self.key} → {self.participant}"
