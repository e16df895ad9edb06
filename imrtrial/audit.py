"""Audit helpers.

Changes to clinical rows are kept by django-simple-history (who, when, old and new values, and
the reason as `history_change_reason`); these helpers attach the acting user and the reason to
the save that is about to happen. Views of allocation data and exports go to AccessLog.
"""

from django.core.exceptions import ValidationError

from .models import AccessLog


class ReasonRequired(ValidationError):
    """A record already marked complete may only change with a reason."""


def attribute(obj, *, by, reason=""):
    """Make the next save of `obj` record `by` as the author and `reason` as the why."""
    obj._history_user = by
    obj._change_reason = reason.strip()
    return obj


def log_access(request, trial, action, target="", **detail):
    AccessLog.objects.create(
        user=request.user,
        trial=trial,
        action=action,
        target=str(target)[:200],
        detail=detail,
        ip_address=request.META.get("REMOTE_ADDR") or None,
    )
