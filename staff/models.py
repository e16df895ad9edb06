"""What the trial administration keeps besides the rows it changes: invitations (a one-time link
to set a password) and one event per administrative act, with who, when and why.

Role memberships and the trial keep their own history (simple-history, with the reason); sites
and timepoints have none, so each change of theirs is an AdminEvent with the values before and
after. The invitation's token is never stored: only its SHA-256, as a password is never stored.
"""

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from imrtrial.models import Site, Trial, Undeletable


def token_digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(Undeletable):
    """A link to set a password, mailed to a new member of staff: valid once, until it expires."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="invitations"
    )
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Invitation of {self.user} to {self.trial.key}"

    def is_usable(self, now=None):
        now = now or timezone.now()
        return self.used_at is None and self.expires_at > now and self.user.is_active


class AdminEvent(Undeletable):
    """One act of the trial administration: who, when, what, to which record, and why."""

    class Action(models.TextChoices):
        INVITED = "invited", gettext_lazy("Invited a member of staff")
        GRANTED = "granted", gettext_lazy("Granted a role")
        WITHDRAWN = "withdrawn", gettext_lazy("Withdrew a role")
        DEACTIVATED = "deactivated", gettext_lazy("Deactivated an account")
        SITE_ADDED = "site_added", gettext_lazy("Added a site")
        SITE_CHANGED = "site_changed", gettext_lazy("Changed a site")
        WINDOW_CHANGED = "window_changed", gettext_lazy("Changed a visit window")
        REMINDERS_CHANGED = "reminders_changed", gettext_lazy("Changed the reminder settings")
        OPENED = "opened", gettext_lazy("Opened the trial for recruitment")
        CLOSED = "closed", gettext_lazy("Closed the trial to recruitment")

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="admin_events")
    # The site the act concerns; empty for the whole trial (or a role at every site).
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    target = models.CharField(max_length=200)
    # {field: [before, after]} for changed settings; nothing arm-related is ever put here.
    changes = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"{self.get_action_display()}: {self.target}"
