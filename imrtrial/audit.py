"""Audit helpers.

Changes to clinical rows are kept by django-simple-history (who, when, old and new values, and
the reason as `history_change_reason`); these helpers attach the acting user and the reason to
the save that is about to happen. Views of allocation data and exports go to AccessLog.

Each app says which of its models the audit report shows, and how a row of each reaches its
trial, site and participant, in its own `audit.py` (`register(Source(...))`), the way an app
registers its models with the admin. This app cannot import the later apps, so they register
with it; imrtrial.audittrail reads the sources and asks imrtrial.access about every row.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy

from .models import (
    AccessLog,
    DatabaseLock,
    Membership,
    Participant,
    Trial,
    UnblindingIncident,
)


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


@dataclass(frozen=True)
class Source:
    """One kind of record in the audit report.

    Paths are ORM lookups from a row of `model` (they hold on its history rows too, whose
    foreign keys mirror the model's). `site=None` marks trial-level rows (configuration);
    `site_nullable` rows with an empty site (a membership at every site) are trial-level too."""

    key: str  # the value of the report's "kind of record" filter
    label: str
    model: type
    trial: str
    describe: object  # callable(row) -> text naming the record, e.g. "P-0007 GAF @ baseline"
    site: str | None = None
    site_nullable: bool = False
    participant: str | None = None
    select_related: tuple = ()
    # Every row is allocation-revealing (IMR groups, attendance, fidelity, the allocation).
    unblinded: bool = False
    # Rows among the others that are allocation-revealing (e.g. stopping the intervention).
    revealing: Q | None = None
    # Rows whose author could reveal the arm (a staff-rated form: its rater may be the
    # participant's IMR facilitator). Their author, and the fields naming them, are hidden from
    # everyone not unblinded at the row's site, on every such row alike.
    author_hidden: object = None  # a Q, or a callable returning one (asked at query time)
    author_fields: tuple = ()
    # Free text (reasons, descriptions). On rows whose author is or was unblinded at the row's
    # site, a viewer blinded there sees that text exists, not its words; and every author who is
    # unblinded staff appears to them by a role-neutral label (imrtrial.access.may_read_text).
    text_fields: tuple = ()
    # callable(row) -> keys of free-text items inside the row's JSON fields (a form's values).
    text_keys: object = None
    # Never shown to anyone: block sizes and sequence slots help predict the next allocation.
    hidden_fields: tuple = ()
    # Shown only to holders of view_identifying at the row's site.
    identifying_fields: tuple = ()
    # callable(rows) -> {row pk: {field names}} masked on those rows (e.g. raw fidelity scores
    # before both raters are in).
    masked: object = None
    # Rows that are never changed (withdrawals) have no history table: each row is one event,
    # dated by `at` and authored by `by`.
    history: bool = True
    at: str = "history_date"
    by: str = "history_user"
    fields_shown: tuple = field(default=())  # empty: every concrete field

    @property
    def table(self):
        """The model whose rows are the events."""
        return self.model.history.model if self.history else self.model


_sources = {}
_discovered = False


def register(source):
    if source.key in _sources:
        raise ValueError(f"Audit source {source.key!r} is registered twice.")
    _sources[source.key] = source
    return source


def sources():
    """Every registered source, in registration order (imrtrial's first, then each app's)."""
    global _discovered
    if not _discovered:
        autodiscover_modules("audit")
        _discovered = True
    return list(_sources.values())


register(
    Source(
        key="trial",
        label=gettext_lazy("Trial configuration"),
        model=Trial,
        trial="id",
        describe=lambda row: row.name,
        hidden_fields=("block_sizes",),
    )
)
register(
    Source(
        key="membership",
        label=gettext_lazy("Role membership"),
        model=Membership,
        trial="trial",
        site="site",
        site_nullable=True,
        select_related=("user", "site"),
        describe=lambda row: (
            f"{row.user.get_username()}: {row.get_role_display()}"
            f" ({row.site.name if row.site_id else 'all sites'})"
        ),
    )
)
register(
    Source(
        key="participant",
        label=gettext_lazy("Participant"),
        model=Participant,
        trial="trial",
        site="site",
        participant="id",
        describe=lambda row: row.participant_id,
    )
)
register(
    Source(
        key="unblindingincident",
        label=gettext_lazy("Unblinding incident"),
        model=UnblindingIncident,
        trial="participant__trial",
        site="participant__site",
        participant="participant",
        select_related=("participant", "assessor"),
        describe=lambda row: f"{row.participant.participant_id}: disclosed to an assessor",
        history=False,
        at="reported_at",
        by="reported_by",
        text_fields=("description",),
    )
)
register(
    Source(
        key="databaselock",
        label=gettext_lazy("Database lock"),
        model=DatabaseLock,
        trial="trial",
        describe=lambda row: row.get_action_display(),
        history=False,
        at="at",
        by="by",
    )
)
