"""Data queries (discrepancy notes): a data manager asks the site about an item, a form or a
visit; whoever entered the form answers, and may correct the value; the data manager closes,
re-opens or cancels.

Contract:
- Every action is a verb here (`*, by`), atomic, registered with imrtrial.locking (so it
  refuses while the database, the casebook or the form is locked), and leaves a QueryMessage
  and a history row with the reason; nothing is deleted or edited.
- Legal moves only (TRANSITIONS); anything else is Refused with nothing saved. Every action
  carries a message.
- Who: data managers (Perm.VERIFY_FORMS at the participant's site) open, close, re-open and
  cancel. Monitors (Perm.SOURCE_VERIFY there; access.may_open_queries) open queries too, see
  every query of their sites, and close, re-open or cancel the ones they opened themselves
  (`may_act`). The addressee answers: whoever entered the form (a reconciled form: the site's
  assessors, the paper being the source), else for a visit its assigned assessor, else any
  of the site's assessors who may enter the form (access.may_enter with the instrument's
  rater). A staff-rated form's queries reach its unblinded raters only: only they answer, and
  a blinded reader sees their words as any text by unblinded staff (access.text_for).
- An answer may correct the value through services.save_entry, the query standing as the
  reason ("query #n: <answer>"); the message is marked changed_value.
- Blinding: no message may name an arm, an IMR group, a facilitator or the programme
  (imrtrial.blinding_words.names_arm, the crawler's list): refused, saying which word.
- Open queries block verifying and locking their form (services.set_status) and locking a
  casebook or the database (registered with services.blocks_locking).
"""

import itertools

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from imrtrial import access
from imrtrial.audit import attribute
from imrtrial.blinding_words import names_arm
from imrtrial.errors import Refused
from imrtrial.locking import Scope, writes_clinical_data
from imrtrial.models import Participant, Perm

from . import registry, services
from .models import DataQuery, FormEntry, QueryMessage

MAX_TEXT = 2000
Status, Action = DataQuery.Status, QueryMessage.Action
# action -> (statuses it may start from, status it leads to)
TRANSITIONS = {
    Action.ANSWER: ({Status.OPEN}, Status.ANSWERED),
    Action.CLOSE: ({Status.ANSWERED}, Status.CLOSED),
    # Not satisfied with an answer, or a closed query that turns out not to be: ask again.
    Action.REOPEN: ({Status.ANSWERED, Status.CLOSED}, Status.OPEN),
    Action.CANCEL: ({Status.OPEN, Status.ANSWERED}, Status.CANCELLED),
}


# --- Who ---------------------------------------------------------------------------------------


def rater_of(query):
    """The rater kind whose staff answer the query: the form's instrument's, or the visit's
    blinded assessor's."""
    if query.entry_id is None:
        return "assessor_interview"
    if registry.is_staff_rated(query.entry.instrument):
        return "staff"
    return registry.get(query.entry.instrument).rater


def may_manage(user, participant):
    """Close, re-open, cancel any query of the site; see every query of the site."""
    return access.has(user, Perm.VERIFY_FORMS, participant.trial, participant.site)


def may_open(user, participant):
    """Ask the site: its data managers and monitors."""
    return access.may_open_queries(user, participant)


def may_act(user, query):
    """Close, re-open, cancel this query: the site's data managers, and a monitor the queries
    they opened (a monitor does not overrule a data manager's question)."""
    participant = query.participant
    if may_manage(user, participant):
        return True
    return query.opened_by_id == user.pk and access.may_source_verify(user, participant)


def may_answer(user, query):
    if not access.may_enter(user, query.participant, rater_of(query)):
        return False
    return query.addressed_to_id is None or query.addressed_to_id == user.pk


def may_see(user, query):
    """The thread: the site's data managers and monitors, and whoever may answer it."""
    participant = query.participant
    return (
        may_manage(user, participant)
        or access.may_source_verify(user, participant)
        or may_answer(user, query)
    )


def addressee_for(visit, entry):
    if entry is None:
        return visit.assessor
    if entry.kind == FormEntry.Kind.FINAL:
        return None  # reconciled from paper by the data manager: the site answers
    return entry.entered_by


# --- Text ----------------------------------------------------------------------------------------


def check_text(text, trial):
    """The message, stripped; Refused if empty, too long, or naming an arm."""
    text = (text or "").strip()
    if not text:
        raise Refused(_("Write a message."))
    if len(text) > MAX_TEXT:
        raise Refused(_("Keep the message under %(max)s characters.") % {"max": MAX_TEXT})
    if "\x00" in text:
        raise Refused(_("The message contains a character that cannot be stored."))
    if found := names_arm(text, trial):
        raise Refused(
            _(
                "Not sent: the message names %(found)s, which could tell a blinded reader the "
                "participant's arm. Rephrase it without that word."
            )
            % {"found": found}
        )
    return text


# --- Actions -------------------------------------------------------------------------------------


def _open_scope(arguments):
    entry = arguments.get("entry")
    return Scope.of(entry if entry is not None else arguments["visit"])


def _query_scope(arguments):
    query = arguments["query"]
    return Scope.of(query.entry if query.entry_id else query.visit)


@writes_clinical_data("assessments.open_query", _open_scope)
@transaction.atomic
def open_query(visit, entry=None, item="", *, by, category, text):
    """Ask about a visit, a form of it (`entry`) or one item of that form."""
    if not may_open(by, visit.participant):
        raise Refused(_("Only a data manager or a monitor opens queries."))
    return _open(visit, entry, item, by=by, category=category, text=text)


@writes_clinical_data("assessments.open_rule_query", _open_scope)
@transaction.atomic
def open_rule_query(visit, entry=None, item="", *, by, category, text):
    """A system query from a data quality rule (quality.services): the rule, written in the
    trial's configuration, asks; `by` is the system account it is recorded as (inactive, no
    role), so no person's seat is needed. Everything else is as open_query: the same checks,
    the same arm-word refusal, the same addressee."""
    return _open(visit, entry, item, by=by, category=category, text=text)


def _open(visit, entry, item, *, by, category, text):
    participant = visit.participant
    if category not in DataQuery.Category.values:
        raise Refused(_("Choose the kind of query."))
    if entry is not None and entry.visit_id != visit.pk:
        raise Refused(_("That form is not of this visit."))
    item = (item or "").strip()
    if item:
        if entry is None:
            raise Refused(_("An item is asked about on its form."))
        try:
            instrument = registry.get(entry.instrument)
        except KeyError:
            raise Refused(_("This form's instrument is no longer installed.")) from None
        if item not in {i.code for i in instrument.items}:
            raise Refused(
                _("%(instrument)s has no item %(item)r.")
                % {"instrument": entry.instrument, "item": item}
            )
    text = check_text(text, participant.trial)
    query = DataQuery(
        participant=participant,
        visit=visit,
        entry=entry,
        item=item,
        category=category,
        addressed_to=addressee_for(visit, entry),
        opened_by=by,
    )
    attribute(query, by=by, reason=text).save()
    QueryMessage.objects.create(query=query, action=Action.OPEN, text=text, author=by)
    return query


def _locked(query, action):
    """The query read again under a row lock (two data managers closing at once cannot both
    win), if `action` is legal from its current state; else Refused."""
    query = DataQuery.objects.select_for_update().get(pk=query.pk)
    if query.status not in TRANSITIONS[action][0]:
        raise Refused(
            _("Query #%(number)s is %(status)s: it cannot be %(action)s now.")
            % {
                "number": query.pk,
                "status": query.get_status_display().lower(),
                "action": Action(action).label.lower(),
            }
        )
    return query


def _move(query, action, *, by, text, changed_value=False):
    """Save a move checked by _locked, with its message."""
    query.status = TRANSITIONS[action][1]
    attribute(query, by=by, reason=f"{Action(action).label.lower()}: {text}").save(
        update_fields=["status", "updated_at"]
    )
    QueryMessage.objects.create(
        query=query, action=action, text=text, author=by, changed_value=changed_value
    )
    return query


@writes_clinical_data("assessments.answer_query", _query_scope)
@transaction.atomic
def answer_query(query, *, by, text, values=None, version=None):
    """Answer; with `values` ({item code: raw text}) also correct the form through the normal
    save path, the query standing as the reason."""
    if not may_answer(by, query):
        raise Refused(_("This query is not addressed to you."))
    query = _locked(query, Action.ANSWER)
    text = check_text(text, query.participant.trial)
    values = {k: v for k, v in (values or {}).items() if str(v).strip()}
    if values:
        if query.entry_id is None:
            raise Refused(_("A query about a visit has no value to correct."))
        entry = query.entry
        raw = {k: services._as_text(v) for k, v in entry.values.items()}
        raw.update(values)
        services.save_entry(
            query.visit,
            entry.instrument,
            raw,
            by=by,
            kind=entry.kind,
            version=version,
            complete=entry.status != FormEntry.Status.DRAFT,
            reason=f"query #{query.pk}: {text}",
        )
    return _move(query, Action.ANSWER, by=by, text=text, changed_value=bool(values))


@writes_clinical_data("assessments.close_rule_query", _query_scope)
@transaction.atomic
def close_rule_query(query, *, by, text):
    """A rule's query closes by itself, from open or answered, once the data no longer breaks
    the rule: only by the account that opened it (a person's query is never closed so)."""
    query = DataQuery.objects.select_for_update().get(pk=query.pk)
    if query.opened_by_id != by.pk:
        raise Refused(_("Only the rule that opened a query closes it by itself."))
    if query.status not in DataQuery.WAITING:
        raise Refused(
            _("Query #%(number)s is %(status)s.")
            % {"number": query.pk, "status": query.get_status_display().lower()}
        )
    return _move(query, Action.CLOSE, by=by, text=check_text(text, query.participant.trial))


def _manage(query, action, *, by, text):
    if not may_act(by, query):
        raise Refused(
            _(
                "Only a data manager, or the monitor who opened it, closes, re-opens or cancels "
                "a query."
            )
        )
    query = _locked(query, action)
    text = check_text(text, query.participant.trial)
    return _move(query, action, by=by, text=text)


@writes_clinical_data("assessments.close_query", _query_scope)
@transaction.atomic
def close_query(query, *, by, text):
    """The answer resolves the question."""
    return _manage(query, Action.CLOSE, by=by, text=text)


@writes_clinical_data("assessments.reopen_query", _query_scope)
@transaction.atomic
def reopen_query(query, *, by, text):
    """Ask again: the answer does not resolve it, or a closed query turns out not to be."""
    return _manage(query, Action.REOPEN, by=by, text=text)


@writes_clinical_data("assessments.cancel_query", _query_scope)
@transaction.atomic
def cancel_query(query, *, by, text):
    """Withdraw a query opened in error; kept, with its thread."""
    return _manage(query, Action.CANCEL, by=by, text=text)


# --- What blocks verifying and locking --------------------------------------------------------


def _casebooks_with_open_queries(trial, ids):
    return (
        DataQuery.objects.open()
        .filter(participant_id__in=ids)
        .values_list("participant_id", flat=True)
    )


@services.blocks_locking(among=_casebooks_with_open_queries)
def open_query_blockers(trial, participant):
    waiting = DataQuery.objects.open().filter(participant__trial=trial)
    if participant is not None:
        waiting = waiting.filter(participant=participant)
    return [("open data queries", waiting.count())]


def waiting_on(user, trial, sites, limit=100):
    """Open queries the user may answer at `sites` (their worklist), oldest first."""
    candidates = (
        DataQuery.objects.filter(status=Status.OPEN, participant__trial=trial)
        .filter(participant__site__in=sites)
        .filter(Q(addressed_to=user) | Q(addressed_to__isnull=True))
        .exclude(participant__status__in=Participant.FOLLOW_UP_ENDED)
        .order_by("opened_at", "pk")
    )
    rows = []
    # Every candidate until `limit` are found: a slice taken first could be filled with queries
    # the user may not answer and hide the ones they may. Read a slice at a time, each a plain
    # query (a server-side cursor cost three round trips on every worklist, most often empty),
    # their numbers first: on a worklist with none, the query with its six joined tables is
    # not even compiled.
    for start in itertools.count(0, limit):
        numbers = list(candidates.values_list("pk", flat=True)[start : start + limit])
        if not numbers:
            return rows
        batch = list(
            candidates.select_related(
                "participant", "participant__site", "participant__trial", "visit"
            )
            .select_related("visit__timepoint", "entry")
            .filter(pk__in=numbers)
        )
        for query in batch:
            if may_answer(user, query):
                rows.append(query)
                if len(rows) >= limit:
                    return rows
        if len(numbers) < limit:
            return rows


def thread_for(reader, query):
    """[(message, author as the reader sees them, text as the reader may read it)]."""
    trial, site = query.participant.trial, query.participant.site
    return [
        (
            m,
            access.author_label(reader, m.author, trial, site),
            access.text_for(reader, m.text, m.author, trial, site),
        )
        for m in query.messages.select_related("author")
    ]


def age_days(query, today=None):
    today = today or timezone.localdate()
    return (today - timezone.localdate(query.opened_at)).days
