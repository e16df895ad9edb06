"""The audit report: every change to the trial's records, as its auditor may see it.

Contract: `Viewer(user, trial)` asks imrtrial.access once what the user may see (sites audited,
sites where they are unblinded, sites where they may see identifying details); `changes(viewer,
...)` is one SQL query (UNION ALL over the registered sources' history tables, every filter in
its WHERE clause) that a paginator counts and slices; `describe(viewer, page)` turns one page of
it into rows with old -> new values, fetching only that page's rows and their predecessors.

Blinding, in SQL and per row: allocation-revealing sources and rows reach only viewers unblinded
at the row's site; authors of rows whose author could reveal the arm (a staff-rated form, whose
rater may be the participant's IMR facilitator) are hidden from everyone else, for every such
row alike, so that hiding one tells nothing; and filtering by a user leaves those rows out, so
the filter cannot be used to recover the author either.
"""

import datetime
import json
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, Subquery, Value
from django.utils import timezone

from . import access
from .audit import sources
from .models import Perm

HIDDEN = "(hidden)"
EMPTY = "—"
CHANGE_TYPES = {"+": "Created", "~": "Changed", "-": "Deleted"}


class Viewer:
    """What one user may see of one trial's audit trail, asked of the gate once."""

    def __init__(self, user, trial):
        self.user, self.trial = user, trial
        all_sites = set(trial.sites.values_list("pk", flat=True))
        self.audit_sites = set(
            access.sites_where(user, Perm.VIEW_AUDIT, trial).values_list("pk", flat=True)
        )
        self.unblinded_sites = self.audit_sites & set(
            access.unblinded_sites(user, trial).values_list("pk", flat=True)
        )
        self.identifying_sites = set(
            access.sites_where(user, Perm.VIEW_IDENTIFYING, trial).values_list("pk", flat=True)
        )
        self.audits_every_site = self.audit_sites == all_sites
        self.unblinded_everywhere = self.unblinded_sites == all_sites

    def sources(self):
        """The kinds of record this viewer may see at all, for the filter and the query."""
        return [s for s in sources() if not s.unblinded or self.unblinded_sites]


def _at_site(source, sites):
    return Q(**{f"{source.site}__in": sites})


def _visible(source, viewer):
    """Rows of `source` the viewer may see: the trial's, at audited sites, blinding applied."""
    q = Q(**{source.trial: viewer.trial.pk})
    if source.site:
        sites = viewer.unblinded_sites if source.unblinded else viewer.audit_sites
        at = _at_site(source, sites)
        if source.site_nullable:
            at |= Q(**{f"{source.site}__isnull": True})
        q &= at
    if source.revealing is not None:
        q &= ~source.revealing | _at_site(source, viewer.unblinded_sites)
    return q


def _author_hidden(source, viewer):
    """Q of the rows whose author this viewer may not see (None: every author is shown)."""
    rows = source.author_hidden
    if rows is None:
        return None
    if callable(rows):
        rows = rows()
    return rows & ~_at_site(source, viewer.unblinded_sites)


def _by_unblinded(source, viewer):
    """Q of the rows written by someone unblinded at the row's site whom this viewer, blinded
    there, sees only by a role-neutral label and whose words they do not read (None: none)."""
    if not source.site:
        return None  # trial configuration: written by whoever configures it, arm-free
    q = access.unblinded_author_q(viewer.trial, source.by, source.site) & ~_at_site(
        source, viewer.unblinded_sites
    )
    if viewer.unblinded_everywhere:  # reads the rows of no site too (access.may_read_text)
        q &= Q(**{f"{source.site}__isnull": False})
    return q


def _day_start(day):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def period(field, since=None, until=None):
    """Q of `field` (a datetime) on the local days from `since` to `until`, both included,
    written as a range so that the column's index serves it."""
    q = Q()
    if since:
        q &= Q(**{f"{field}__gte": _day_start(since)})
    if until:
        q &= Q(**{f"{field}__lt": _day_start(until + datetime.timedelta(days=1))})
    return q


def changes(viewer, *, user=None, since=None, until=None, participant=None, kind=""):
    """Events (dicts kind, pk, at) the viewer may see, newest first; filtered in SQL."""
    parts = []
    for source in viewer.sources():
        if kind and source.key != kind:
            continue
        if participant is not None and not source.participant:
            continue
        q = _visible(source, viewer)
        if participant is not None:
            q &= Q(**{source.participant: participant.pk})
        if user is not None:
            # Rows whose author this viewer may not see are left out: a filter by user must not
            # recover who wrote them.
            q &= Q(**{source.by: user.pk})
            if (hidden := _author_hidden(source, viewer)) is not None:
                q &= ~hidden
            if (neutral := _by_unblinded(source, viewer)) is not None:
                q &= ~neutral
        q &= period(source.at, since, until)
        table = source.table
        parts.append(
            table.objects.filter(q)
            .order_by()
            .annotate(k=Value(source.key), h=F(table._meta.pk.attname), a=F(source.at))
            .values("k", "h", "a")
        )
    if not parts:
        return get_user_model().objects.none().values("pk")
    if len(parts) == 1:
        return parts[0].order_by("-a", "-h")
    return parts[0].union(*parts[1:], all=True).order_by("-a", "-k", "-h")


@dataclass
class Change:
    field: str
    old: str
    new: str


@dataclass
class Row:
    at: datetime.datetime
    kind: str
    record: str
    change: str
    author: str
    reason: str
    changes: list


def describe(viewer, events):
    """Rows for one page of events, in the page's order: a few queries per kind of record."""
    by_kind = {}
    for event in events:
        by_kind.setdefault(event["k"], []).append(event["h"])
    registry = {s.key: s for s in viewer.sources()}
    rows = {}
    for key, pks in by_kind.items():
        source = registry[key]
        for pk, row in _rows(source, viewer, pks).items():
            rows[key, pk] = row
    return [rows[e["k"], e["h"]] for e in events if (e["k"], e["h"]) in rows]


def _fields(source):
    hidden = set(source.hidden_fields)
    return [
        f
        for f in source.model._meta.concrete_fields
        if not f.primary_key
        and f.name not in hidden
        and not getattr(f, "auto_now", False)
        and not getattr(f, "auto_now_add", False)
        and (not source.fields_shown or f.name in source.fields_shown)
    ]


def _rows(source, viewer, pks):
    table = source.table
    pk_name = table._meta.pk.attname
    qs = table.objects.filter(**{f"{pk_name}__in": pks}).select_related(
        source.by, *source.select_related
    )
    if source.site:
        qs = qs.annotate(_site=F(source.site))
    hidden = _author_hidden(source, viewer)
    neutral = _by_unblinded(source, viewer)
    qs = qs.annotate(
        _author_hidden=_flag(hidden),
        _by_unblinded=_flag(neutral),
    )
    object_pk = source.model._meta.pk.attname
    if source.history:
        earlier = Q(history_date__lt=OuterRef("history_date")) | Q(
            history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id")
        )
        qs = qs.annotate(
            _prev=Subquery(
                table.objects.filter(earlier, **{object_pk: OuterRef(object_pk)})
                .order_by("-history_date", "-history_id")
                .values("history_id")[:1]
            )
        )
    found = list(qs)
    previous = {}
    if source.history:
        prev_ids = [r._prev for r in found if r._prev]
        previous = table.objects.in_bulk(prev_ids)
    fields = _fields(source)
    labels = _related_labels(fields, [*found, *previous.values()])
    masked = source.masked(found) if source.masked else {}
    out = {}
    for row in found:
        site = getattr(row, "_site", None)
        hide = set(masked.get(getattr(row, pk_name), ()))
        if site not in viewer.identifying_sites:
            hide |= set(source.identifying_fields)
        if row._author_hidden or row._by_unblinded:
            hide |= set(source.author_fields)
        withheld = set()
        if row._by_unblinded:
            withheld = set(source.text_fields)
            if source.text_keys:
                withheld |= set(source.text_keys(row))
        prev = previous.get(row._prev) if source.history else None
        kind = row.history_type if source.history else "+"
        author = getattr(row, source.by)
        if row._author_hidden:
            author = HIDDEN
        elif row._by_unblinded:
            author = access.NEUTRAL_AUTHOR
        else:
            author = author.get_username() if author else EMPTY
        reason = getattr(row, "history_change_reason", "") or ""
        out[getattr(row, pk_name)] = Row(
            at=getattr(row, source.at),
            kind=source.label,
            record=source.describe(row),
            change=CHANGE_TYPES.get(kind, kind),
            author=author,
            reason=access.TEXT_WITHHELD if reason and row._by_unblinded else reason,
            changes=_diff(fields, prev, row, hide, labels, withheld),
        )
    return out


def _flag(q):
    return Value(False) if q is None else ExpressionWrapper(q, output_field=BooleanField())


def _related_labels(fields, rows):
    """{(model, pk): text} for every foreign key value on the page, one query per model."""
    wanted = {}
    for f in fields:
        if f.is_relation:
            for row in rows:
                if (value := getattr(row, f.attname)) is not None:
                    wanted.setdefault(f.related_model, set()).add(value)
    labels = {}
    user_model = get_user_model()
    for model, pks in wanted.items():
        # select_related(): what str() of the row reads (a visit's participant and timepoint)
        # comes in the same query.
        for pk, obj in model._default_manager.select_related().in_bulk(list(pks)).items():
            labels[model, pk] = obj.get_username() if model is user_model else str(obj)
    return labels


def _diff(fields, prev, row, hide, labels, withheld=()):
    changes = []
    for f in fields:
        new = getattr(row, f.attname)
        old = getattr(prev, f.attname) if prev is not None else None
        if prev is not None and old == new:
            continue
        if prev is None and new in (None, "", {}, []):
            continue
        if f.name in hide:
            changes.append(Change(f.verbose_name, HIDDEN if prev else EMPTY, HIDDEN))
            continue
        if f.name in withheld:
            changes.append(Change(f.verbose_name, _withheld(old), _withheld(new)))
            continue
        if isinstance(new, dict) and isinstance(old, dict | None):
            old = old or {}
            for k in sorted(set(old) | set(new), key=str):
                if old.get(k) != new.get(k):
                    show = _withheld if k in withheld else _dict_text
                    changes.append(
                        Change(f"{f.verbose_name}: {k}", show(old.get(k)), show(new.get(k)))
                    )
            continue
        changes.append(
            Change(f.verbose_name, _show(f, old, labels, prev), _show(f, new, labels, row))
        )
    return changes


def _withheld(value):
    return EMPTY if value in (None, "") else access.TEXT_WITHHELD


def _dict_text(value):
    return _text(None, value)


def _show(f, value, labels, row):
    if row is None or value is None or value == "":
        return EMPTY
    if f.is_relation:
        return labels.get((f.related_model, value), f"#{value}")
    if f.choices:
        return str(dict(f.flatchoices).get(value, value))
    return _text(f, value)


def _text(f, value):
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
