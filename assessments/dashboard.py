"""The record status dashboard and the data manager's queue: what state every form is in, and
what waits on whom.

Contract: read only. A form's state (`State`) comes from its entries and its visit alone, by one
rule written twice, once per row in Python (`form_state`, for the cells) and once in SQL
(`in_state`, for the filters), and the tests hold the two together. A page of the grid costs the
same few queries whatever the trial's size: participants are filtered and paginated in SQL, and
the page's cells are built from one query each for its visits, entries and open queries.

Blinding: nothing here reads an allocation, and nothing shown differs between the arms: every
form due at a visit is shown for every participant (staff-rated forms too, which exist in both
arms), never who entered it; "needs my action" depends on the reader and the form, not the arm.
"""

import datetime
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from imrtrial import access
from imrtrial.models import Participant, Perm, UnblindingIncident

from . import registry
from .models import DataQuery, FormEntry, Visit
from .services import DOUBLE_ENTRY_RATERS

K, S = FormEntry.Kind, FormEntry.Status


class State:
    """A form's place in the data life cycle, with its icon (the legend says which is which;
    the text is there for screen readers)."""

    NOT_STARTED = "not_started"
    DRAFT = "draft"
    AWAITING_SECOND = "awaiting_second"
    AWAITING_RECONCILIATION = "awaiting_reconciliation"
    COMPLETE = "complete"
    RECONCILED = "reconciled"
    VERIFIED = "verified"
    LOCKED = "locked"
    MISSING = "missing"

    # (state, label, icon), in the order of the life cycle. The labels are plain text (the API
    # and tests read them); pages translate them where they show them.
    ALL = [
        (NOT_STARTED, gettext_noop("Not started"), "○"),
        (DRAFT, gettext_noop("Draft"), "◔"),
        (AWAITING_SECOND, gettext_noop("Awaiting second entry"), "◑"),
        (AWAITING_RECONCILIATION, gettext_noop("Awaiting reconciliation"), "⇄"),
        (COMPLETE, gettext_noop("Complete"), "●"),
        (RECONCILED, gettext_noop("Reconciled"), "◉"),
        (VERIFIED, gettext_noop("Verified"), "✓"),
        (LOCKED, gettext_noop("Locked"), "■"),
        (MISSING, gettext_noop("Missing (visit missed)"), "✕"),
    ]
    LABELS = {code: label for code, label, _ in ALL}
    ICONS = {code: icon for code, _, icon in ALL}


def form_state(entries, missed):
    """The state of one form at one visit from its entries ({kind: status}) and whether the
    visit was marked missed. A reconciled entry wins over a single one (the form went from
    interview to paper); a missed visit's form without data of record is missing, unless both
    of its paper entries are there to reconcile. (Plain strings, not the choices' enums: a
    page asks this thousands of times.)"""
    final = entries.get("final")
    counted = final or entries.get("single")
    if counted == "locked" or counted == "verified":
        return counted
    if counted == "complete":
        return State.RECONCILED if final else State.COMPLETE
    first, second = entries.get("first"), entries.get("second")
    done = (first is not None and first != "draft") + (second is not None and second != "draft")
    if done == 2:
        return State.AWAITING_RECONCILIATION
    if missed:
        return State.MISSING
    if done == 1:
        return State.AWAITING_SECOND
    if entries:
        return State.DRAFT
    return State.NOT_STARTED


# --- The same rule in SQL, for the filters -----------------------------------------------------
# Each filter is "participant id IN (one uncorrelated subquery)": PostgreSQL computes it once
# and hashes it, where EXISTS subqueries joined by OR run once per participant (a filter of
# "needs my action" took seconds on 5,000 participants that way; bench/dashboard.py).


def _sibling(**kw):
    """Entries of the same form as the outer entry."""
    return FormEntry.objects.filter(
        participant=OuterRef("participant"),
        instrument=OuterRef("instrument"),
        timepoint=OuterRef("timepoint"),
        **kw,
    )


def _entries(timepoints):
    """The trial's entries at `timepoints`."""
    return FormEntry.objects.filter(
        participant__trial_id=timepoints[0].trial_id, timepoint__in=[tp.code for tp in timepoints]
    )


_COUNTING = FormEntry.COUNTING_STATUSES


def _unfinished(entries):
    """Of `entries`, those of forms that have no data of record yet."""
    return entries.exclude(
        Exists(_sibling(kind__in=FormEntry.COUNTING_KINDS, status__in=_COUNTING))
    )


def _awaiting_reconciliation(entries):
    """Of `entries`, the first entries of paper forms whose two entries wait to be reconciled."""
    return _unfinished(entries).filter(
        Exists(_sibling(kind=K.SECOND).exclude(status=S.DRAFT)),
        kind=K.FIRST,
        status__in=_COUNTING,
    )


def _having(rows):
    """Q on Participant: among the participant ids of `rows`."""
    return Q(pk__in=rows.order_by().values("participant_id"))


def _short_of(visits, entries, codes):
    """Q on Participant: one of `visits` (at one timepoint) lacks one of `codes` among
    `entries` (at that timepoint)."""
    full = (
        entries.filter(instrument__in=codes)
        .order_by()
        .values("participant_id")
        .annotate(n=Count("instrument", distinct=True))
        .filter(n__gte=len(codes))
        .values("participant_id")
    )
    return _having(visits.exclude(participant_id__in=full))


def in_state(state, timepoints):
    """Q on Participant: has a form in `state` at one of `timepoints`."""
    if not timepoints:  # a trial without a schedule yet
        return Q(pk__in=[])
    entries = _entries(timepoints)
    counted = FormEntry.objects.counting().filter(pk__in=entries.values("pk"))
    if state in (State.LOCKED, State.VERIFIED):
        return _having(counted.filter(status=state))
    if state == State.RECONCILED:
        return _having(counted.filter(kind=K.FINAL, status=S.COMPLETE))
    if state == State.COMPLETE:
        return _having(counted.filter(kind=K.SINGLE, status=S.COMPLETE))
    if state == State.MISSING:
        return _having(
            Visit.objects.filter(timepoint__in=timepoints, missed=True, completed_on__isnull=True)
        )
    if state == State.AWAITING_RECONCILIATION:
        return _having(_awaiting_reconciliation(entries))
    not_missed = _unfinished(entries.exclude(visit__missed=True))
    if state == State.AWAITING_SECOND:
        one = Q(pk__in=[])
        for kind, other in ((K.FIRST, K.SECOND), (K.SECOND, K.FIRST)):
            one |= _having(
                not_missed.filter(kind=kind, status__in=_COUNTING).exclude(
                    Exists(_sibling(kind=other, status__in=_COUNTING))
                )
            )
        return one
    if state == State.DRAFT:
        return _having(
            not_missed.filter(status=S.DRAFT).exclude(Exists(_sibling().exclude(status=S.DRAFT)))
        )
    if state == State.NOT_STARTED:
        q = Q(pk__in=[])
        for tp in timepoints:
            if tp.instruments:
                visits = Visit.objects.filter(timepoint=tp, missed=False)
                q |= _short_of(visits, _entries([tp]), tp.instruments)
        return q
    raise ValueError(state)


# --- Who needs to act --------------------------------------------------------------------------


@dataclass
class Reader:
    """What the dashboard's reader may do, asked of the gate once per page."""

    user: object
    trial: object
    dm_sites: set  # site ids where they verify, reconcile and close queries
    entry_sites: set  # site ids where they enter interviews and questionnaires
    today: datetime.date = field(default_factory=timezone.localdate)

    @classmethod
    def of(cls, user, trial):
        return cls(
            user,
            trial,
            set(access.sites_where(user, Perm.VERIFY_FORMS, trial).values_list("pk", flat=True)),
            set(access.sites_where(user, Perm.ENTER_INTERVIEW, trial).values_list("pk", flat=True)),
        )

    @property
    def sites(self):
        return self.dm_sites | self.entry_sites


def enterable(instruments):
    """The instruments of a visit that a blinded assessor enters (not the staff ratings)."""
    return [code for code in instruments if registry.get(code).rater != "staff"]


def _to_verify():
    """Counting entries waiting for verification: complete, with no query still waiting."""
    waiting = DataQuery.objects.open().filter(entry_id__isnull=False).values("entry_id")
    return FormEntry.objects.counting().filter(status=S.COMPLETE).exclude(pk__in=waiting)


def _queries_for(user):
    """Open queries the user is to answer: theirs, or their site's assessors' (no addressee)."""
    return Q(addressed_to=user) | Q(addressed_to__isnull=True)


def needs_action(reader, timepoints):
    """Q on Participant: something at one of `timepoints` waits on the reader."""
    if not timepoints:
        return Q(pk__in=[])
    entries = _entries(timepoints)
    queries = DataQuery.objects.filter(visit__timepoint__in=timepoints)
    q = Q(pk__in=[])
    if reader.dm_sites:
        q |= Q(site__in=reader.dm_sites) & (
            _having(_awaiting_reconciliation(entries))
            | _having(_to_verify().filter(pk__in=entries.values("pk")))
            | _having(queries.filter(status="answered"))
        )
    if reader.entry_sites:
        to_enter = Q(pk__in=[])
        for tp in timepoints:
            if codes := enterable(tp.instruments):
                counted = FormEntry.objects.counting().filter(pk__in=_entries([tp]).values("pk"))
                to_enter |= _short_of(_due_visits(reader).filter(timepoint=tp), counted, codes)
        q |= Q(site__in=reader.entry_sites) & (
            _having(queries.filter(_queries_for(reader.user), status="open"))
            | (to_enter & ~Q(status__in=Participant.FOLLOW_UP_ENDED))
        )
    return q


def _due_visits(reader):
    """Visits the reader is to fill: window open (or passed), not done, not missed, theirs or
    no one's (as the worklist)."""
    return Visit.objects.filter(
        Q(assessor=reader.user) | Q(assessor__isnull=True),
        window_start__lte=reader.today,
        completed_on__isnull=True,
        missed=False,
    )


# --- One page of the grid ----------------------------------------------------------------------


@dataclass
class Form:
    code: str
    state: str
    url: str
    act: bool  # waits on the reader

    @property
    def label(self):
        return gettext(State.LABELS[self.state])

    @property
    def icon(self):
        return State.ICONS[self.state]


@dataclass
class Cell:
    visit: object  # None: no visit scheduled (yet)
    url: str = ""
    label: str = ""
    forms: list = field(default_factory=list)
    icons: str = ""  # the forms as HTML, for the page
    open_queries: int = 0
    act: bool = False
    marks: list = field(default_factory=list)  # Marks of later apps (a signature)


@dataclass(frozen=True)
class Mark:
    """A later app's note on a visit or a participant (an investigator's signature): an icon
    with its text for screen readers. Nothing in a mark may differ between the arms."""

    kind: str  # a CSS class suffix
    icon: str
    text: str


# Later apps mark the grid (investigator signatures: signoff.dashboard). A source is
# callable(participant pks, timepoints) -> {(participant pk, visit pk or None): Mark} (None: the
# participant's row), asked once per page in a constant number of queries; `legend` lists
# its Marks for the page's legend.
_mark_sources = []


def marks_grid(source, *, legend=()):
    _mark_sources.append((source, tuple(legend)))
    return source


def mark_legend():
    return [mark for _, legend in _mark_sources for mark in legend]


def _marks(ids, timepoints):
    found = defaultdict(list)
    for source, _legend in _mark_sources:
        for key, mark in source(ids, timepoints).items():
            found[key].append(mark)
    return found


def grid(reader, participants, timepoints, *, visit_url, entry_url, reconcile_url):
    """[(participant, [Cell per timepoint])] for one page of participants, in 3 queries.

    The URL builders take (visit pk[, instrument, kind]) and return a path, so that a page of
    thousands of icons does not reverse a URL for each."""
    ids = [p.pk for p in participants]
    visits = {
        (v.participant_id, v.timepoint_id): v
        for v in Visit.objects.filter(participant_id__in=ids, timepoint__in=timepoints).only(
            "id",
            "participant_id",
            "timepoint_id",
            "assessor_id",
            "completed_on",
            "missed",
            "window_start",
        )
    }
    entries = defaultdict(dict)  # (participant, timepoint code, instrument) -> {kind: status}
    authors = defaultdict(dict)  # who made a first or second entry: to offer the reader the
    # entry that is theirs to make, never shown
    for pid, tp, instrument, kind, status, by in FormEntry.objects.filter(
        participant_id__in=ids, timepoint__in=[t.code for t in timepoints]
    ).values_list("participant_id", "timepoint", "instrument", "kind", "status", "entered_by_id"):
        entries[pid, tp, instrument][kind] = status
        if kind in (K.FIRST, K.SECOND):
            authors[pid, tp, instrument][kind] = by
    queries = Counter()  # (visit, status, mine) -> n
    waiting_entries = set()
    for visit_id, entry_id, status, addressed_to in (
        DataQuery.objects.open()
        .filter(participant_id__in=ids)
        .values_list("visit_id", "entry_id", "status", "addressed_to_id")
    ):
        mine = addressed_to in (None, reader.user.pk)
        queries[visit_id, status, mine] += 1
        if entry_id:
            waiting_entries.add(entry_id)
    disclosed = set()
    if reader.entry_sites:
        disclosed = set(
            UnblindingIncident.objects.filter(
                participant_id__in=ids, assessor=reader.user
            ).values_list("participant_id", flat=True)
        )
    counted_ids = _counted_entry_ids(ids, timepoints) if reader.dm_sites else {}
    marks = _marks(ids, timepoints)
    rows = []
    for p in participants:
        p.marks = marks.get((p.pk, None), [])
        dm = p.site_id in reader.dm_sites
        enters = p.site_id in reader.entry_sites and p.status not in Participant.FOLLOW_UP_ENDED
        cells = []
        for tp in timepoints:
            visit = visits.get((p.pk, tp.pk))
            if visit is None:
                cells.append(Cell(None))
                continue
            cell = Cell(
                visit, visit_url(visit.pk), tp.display_label, marks=marks.get((p.pk, visit.pk), [])
            )
            answered = queries[visit.pk, "answered", True] + queries[visit.pk, "answered", False]
            mine_open = queries[visit.pk, "open", True]
            cell.open_queries = answered + mine_open + queries[visit.pk, "open", False]
            due = (
                enters
                and visit.completed_on is None
                and not visit.missed
                and visit.window_start <= reader.today
                and visit.assessor_id in (None, reader.user.pk)
            )
            cell.act = (dm and answered > 0) or (p.site_id in reader.entry_sites and mine_open > 0)
            for code in tp.instruments:
                kinds = entries.get((p.pk, tp.code, code), {})
                state = form_state(kinds, visit.missed)
                url, act = f"{cell.url}#f-{code}", False
                if dm:
                    if state == State.AWAITING_RECONCILIATION:
                        url, act = reconcile_url(visit.pk, code), True
                    elif state in (State.COMPLETE, State.RECONCILED):
                        act = counted_ids.get((p.pk, tp.code, code)) not in waiting_entries
                elif due and state in (State.NOT_STARTED, State.DRAFT, State.AWAITING_SECOND):
                    kind = _kind_to_enter(
                        code, kinds, authors.get((p.pk, tp.code, code), {}), reader.user.pk
                    )
                    rater = registry.get(code).rater
                    if rater == "assessor_interview" and p.pk in disclosed:
                        kind = None  # the participant told this assessor their arm
                    if kind:
                        url, act = entry_url(visit.pk, code, kind), True
                cell.forms.append(Form(code, state, url, act))
                cell.act = cell.act or act
            cells.append(cell)
        rows.append((p, cells))
    return rows


def _kind_to_enter(code, kinds, authors, user_id):
    """The entry of an unfinished form that is the reader's to make (or finish), or None:
    staff ratings are never a blinded assessor's; of a paper form's two entries, one each."""
    rater = registry.get(code).rater
    if rater == "staff":
        return None
    if rater not in DOUBLE_ENTRY_RATERS:
        return K.SINGLE
    mine = [kind for kind, by in authors.items() if by == user_id]
    if mine:
        return mine[0] if kinds.get(mine[0]) == S.DRAFT else None
    for kind in (K.FIRST, K.SECOND):
        if kind not in kinds:
            return kind
    return None


def _counted_entry_ids(ids, timepoints):
    """{(participant, timepoint code, instrument): id of the counting entry} for the page."""
    return {
        (pid, tp, instrument): pk
        for pk, pid, tp, instrument in FormEntry.objects.counting()
        .filter(participant_id__in=ids, timepoint__in=[t.code for t in timepoints])
        .values_list("pk", "participant_id", "timepoint", "instrument")
    }


# --- The data manager's queue ------------------------------------------------------------------

QUEUE_ROWS = 50  # rows listed of each kind; the counts cover all
# Days a waiting query has been open, in bins for the ageing chart: (label, lowest, highest).
AGE_BINS = [
    (_("0-7 days"), 0, 7),
    (_("8-14 days"), 8, 14),
    (_("15-30 days"), 15, 30),
    (_("over 30 days"), 31, None),
]


def to_reconcile(trial, sites):
    entries = FormEntry.objects.filter(participant__trial=trial, participant__site__in=sites)
    return _awaiting_reconciliation(entries)


def to_verify(trial, sites):
    return _to_verify().filter(participant__trial=trial, participant__site__in=sites)


def answered_queries(trial, sites):
    return DataQuery.objects.filter(
        participant__trial=trial, participant__site__in=sites, status="answered"
    )


def overdue_visits(trial, sites, today):
    """Visits past their window, neither done nor marked missed."""
    return Visit.objects.filter(
        participant__trial=trial,
        participant__site__in=sites,
        window_end__lt=today,
        completed_on__isnull=True,
        missed=False,
    )


def casebooks_to_lock(trial, sites):
    """Participants whose casebook is unlocked and has nothing left to do: every visit of the
    schedule done or missed (or the participant withdrawn), no draft, no paper form waiting for
    reconciliation, no waiting query. The queue takes away those a rule registered with
    services.blocks_locking blocks (services.casebooks_blocked), as lock_casebook would."""
    n_timepoints = trial.timepoints.count()
    entries = FormEntry.objects.filter(participant=OuterRef("pk"))
    return (
        Participant.objects.filter(
            trial=trial,
            site__in=sites,
            casebook_locked_at__isnull=True,
            randomized_on__isnull=False,
        )
        .annotate(n_visits=Count("visits"))
        .filter(Q(n_visits=n_timepoints) | Q(status__in=Participant.FOLLOW_UP_ENDED))
        .exclude(
            Exists(
                Visit.objects.filter(
                    participant=OuterRef("pk"), completed_on__isnull=True, missed=False
                )
            )
        )
        .exclude(Exists(entries.filter(status=S.DRAFT)))
        .exclude(Exists(entries.filter(kind=K.FIRST).exclude(Exists(_sibling(kind=K.FINAL)))))
        .exclude(Exists(DataQuery.objects.open().filter(participant=OuterRef("pk"))))
    )


def per_site(queryset, site_path):
    """{site id: count} of `queryset`."""
    return dict(
        queryset.order_by()
        .values_list(site_path)
        .annotate(n=Count("pk"))
        .values_list(site_path, "n")
    )


def query_ageing(trial, sites, now):
    """{site id: [count per AGE_BINS]} of waiting queries, by days since they were opened."""
    ages = defaultdict(lambda: [0] * len(AGE_BINS))
    for site_id, opened_at in (
        DataQuery.objects.open()
        .filter(participant__trial=trial, participant__site__in=sites)
        .values_list("participant__site_id", "opened_at")
    ):
        days = (now - opened_at).days
        for i, (_label, low, high) in enumerate(AGE_BINS):
            if days >= low and (high is None or days <= high):
                ages[site_id][i] += 1
                break
    return ages
