"""Running the data quality rules: over a whole trial (nightly, or "Run now"), and over one form
as it is saved.

Contract:
- `run(run_pk)` evaluates every rule of the trial (quality.rules, quality.checks) and keeps one
  system data query per rule and record, through assessments.queries (open_rule_query,
  close_rule_query, both registered writers, so locks hold there too): a record that breaks a
  rule and has no query gets one; a query whose record no longer breaks its rule closes by
  itself; a query a data manager closed or cancelled while the record still breaks the rule is
  left alone (Finding.State.ACCEPTED). Idempotent: a second run opens and closes nothing.
- Locked data (the database, a casebook, a form) is skipped, never written, and counted; a
  record whose write fails is logged and counted, never failing the run.
- The queries are recorded as by the system account (`system_account`): inactive, with no
  password and no role, so it can sign in nowhere and is nobody's seat.
- `check_on_save` is the entry page's check (assessments.services.save_entry, acknowledge=):
  the form's own rules, the trial rules that read the form at this visit, and the outlier rule
  against the last run's distributions. A few small queries, nothing per item.
- `request_run(trial, by=)` is the data manager's "Run now": one queued run at a time.
"""

import datetime
import functools
import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments import queries, registry
from assessments import services as crf
from assessments.models import DataQuery, FormEntry, Visit
from imrtrial import access
from imrtrial.celery import task_named
from imrtrial.errors import Locked, Refused
from imrtrial.models import Participant, Perm, Trial

from . import checks
from .models import Finding, RuleRun
from .rules import (
    OUTLIER_MIN_VALUES,
    OUTLIER_Z,
    form_rule_breaks,
    outlier_items,
    robust_z,
    rules_for_saves,
    rules_of,
    trial_rule_breaks,
)

logger = logging.getLogger(__name__)
RUN_RULES = "quality.tasks.run_rules"
SYSTEM_USERNAME = "data-quality-rules"
STALE_AFTER = datetime.timedelta(hours=1)


def system_account():
    """The account system queries are recorded as: made on first use (it survives a flush of
    the database the way a data migration's row would not), inactive, no usable password."""
    user, created = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"first_name": "Data quality", "last_name": "rules", "is_active": False},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


# --- Run now ---------------------------------------------------------------------------------


def may_run(user, trial):
    """The rules page and "Run now": data managers of the trial (at any of its sites)."""
    return access.has(user, Perm.VERIFY_FORMS, trial)


@transaction.atomic
def request_run(trial, *, by):
    if not may_run(by, trial):
        raise Refused(_("Only a data manager runs the data quality rules."))
    Trial.objects.select_for_update().get(pk=trial.pk)  # one request at a time per trial
    # A run asked for in the last hour and not finished is the one to wait for; an older one
    # was lost (a worker killed, the broker emptied) and does not block a new one.
    waiting = RuleRun.objects.filter(
        trial=trial,
        status__in=[RuleRun.Status.QUEUED, RuleRun.Status.RUNNING],
        created_at__gte=timezone.now() - STALE_AFTER,
    ).first()
    if waiting is not None:
        return waiting
    run_ = RuleRun.objects.create(trial=trial, requested_by=by)
    transaction.on_commit(lambda: _queue(run_.pk))
    return run_


def _queue(run_pk):
    try:
        task_named(RUN_RULES).delay(run_pk)
    except Exception as exc:  # the broker is down: the run says so
        logger.exception("Rule run %s could not be queued", run_pk)
        RuleRun.objects.filter(pk=run_pk).update(
            status=RuleRun.Status.FAILED, error=f"Could not queue the run: {exc}"[:500]
        )


def nightly():
    """Beat, once a night: a run of every trial that has participants."""
    done = []
    for trial in Trial.objects.filter(participants__isnull=False).distinct():
        run_ = RuleRun.objects.create(trial=trial)
        done.append(run(run_.pk).pk)
    return done


def last_run(trial):
    return (
        RuleRun.objects.filter(trial=trial, status=RuleRun.Status.DONE)
        .order_by("-finished_at", "-pk")
        .first()
    )


# --- The run -------------------------------------------------------------------------------


# The built-in rules and the outlier yardstick are SQL written for PostgreSQL (the database of
# every deployment and of the tests); the `make run` demo's SQLite says so rather than fail.
NEEDS_POSTGRESQL = (
    "The data quality run needs PostgreSQL: its built-in rules are SQL written for it. The demo "
    "database (SQLite) cannot run it; set DATABASE_URL to a PostgreSQL database."
)


def run(run_pk):
    """Run every rule of the run's trial. Safe to run twice: a run already done stops here."""
    run_ = RuleRun.objects.select_related("trial").get(pk=run_pk)
    if run_.status in (RuleRun.Status.DONE, RuleRun.Status.FAILED):
        return run_
    if connection.vendor != "postgresql":
        RuleRun.objects.filter(pk=run_.pk).update(
            status=RuleRun.Status.FAILED, finished_at=timezone.now(), error=NEEDS_POSTGRESQL
        )
        run_.refresh_from_db()
        return run_
    RuleRun.objects.filter(pk=run_.pk).update(
        status=RuleRun.Status.RUNNING, started_at=timezone.now()
    )
    try:
        outcome = evaluate_and_reconcile(run_.trial)
    except Exception as exc:
        logger.exception("Rule run %s failed", run_.pk)
        RuleRun.objects.filter(pk=run_.pk).update(
            status=RuleRun.Status.FAILED, finished_at=timezone.now(), error=str(exc)[:500]
        )
        run_.refresh_from_db()
        return run_
    RuleRun.objects.filter(pk=run_.pk).update(
        status=RuleRun.Status.DONE, finished_at=timezone.now(), **outcome
    )
    run_.refresh_from_db()
    return run_


@dataclass
class _Locks:
    database: bool
    casebooks: set
    forms: set

    def holds(self, participant_id, entry_id):
        return self.database or participant_id in self.casebooks or entry_id in self.forms


def _locks(trial):
    return _Locks(
        database=Trial.objects.filter(pk=trial.pk, status=Trial.Status.LOCKED).exists(),
        casebooks=set(
            Participant.objects.filter(trial=trial, casebook_locked_at__isnull=False).values_list(
                "pk", flat=True
            )
        ),
        forms=set(
            FormEntry.objects.filter(
                participant__trial=trial, status=FormEntry.Status.LOCKED
            ).values_list("pk", flat=True)
        ),
    )


def evaluate_and_reconcile(trial):
    """Find what breaks each rule now, and bring the system queries in line with it."""
    rules = {rule.code: rule for rule in rules_of(trial)}
    found, stats = checks.find(trial, list(rules.values()))
    # {rule: {site id: records}}: the rules page shows each reader their sites' counts.
    site_of = dict(Participant.objects.filter(trial=trial).values_list("pk", "site_id"))
    breaking = {code: {} for code in rules}
    for (code, _record_key), record in found.items():
        site = str(site_of[record.participant_id])
        breaking[code][site] = breaking[code].get(site, 0) + 1
    locks = _locks(trial)
    findings = {
        (f.rule, f.key): f
        for f in Finding.objects.filter(trial=trial).select_related("query")
        if f.rule in rules
    }
    by = system_account()
    tally = {"opened": 0, "closed": 0, "skipped_locked": 0, "failed_records": 0}

    def attempt(participant_id, entry_id, action, *args):
        if locks.holds(participant_id, entry_id):
            tally["skipped_locked"] += 1
            return
        try:
            action(*args)
        except Refused as exc:  # locked since the run began, or a text refused
            tally["skipped_locked" if isinstance(exc, Locked) else "failed_records"] += 1
            logger.warning("Rule query not written for participant %s: %s", participant_id, exc)
        except Exception:
            tally["failed_records"] += 1
            logger.exception("Rule query not written")

    for pair, record in found.items():
        finding = findings.get(pair)
        if finding is None or finding.state == Finding.State.FIXED:
            attempt(
                record.participant_id,
                record.entry_id,
                _open,
                rules[record.rule],
                record,
                finding,
                trial,
                by,
                tally,
            )
        elif finding.state == Finding.State.OPEN and not _waiting(finding):
            # A data manager closed or cancelled it while the data still breaks the rule.
            attempt(record.participant_id, record.entry_id, _mark, finding, Finding.State.ACCEPTED)
    for pair, finding in findings.items():
        if pair in found or finding.state == Finding.State.FIXED:
            continue
        if finding.state == Finding.State.OPEN and _waiting(finding):
            attempt(
                finding.participant_id,
                finding.entry_id,
                _close,
                rules[finding.rule],
                finding,
                by,
                tally,
            )
        else:
            attempt(finding.participant_id, finding.entry_id, _mark, finding, Finding.State.FIXED)
    return {"breaking": breaking, "stats": stats, **tally}


def _waiting(finding):
    return finding.query is not None and finding.query.status in DataQuery.WAITING


def _open(rule, record, finding, trial, by, tally):
    visit = Visit.objects.select_related("participant__trial", "timepoint").get(pk=record.visit_id)
    entry = FormEntry.objects.get(pk=record.entry_id) if record.entry_id else None
    with transaction.atomic():
        ask = functools.partial(
            queries.open_rule_query, visit, entry, record.item, by=by, category=rule.category
        )
        try:
            query = ask(text=rule.query_text(record.detail))
        except Refused:
            if not record.detail:
                raise
            # The detail quotes an item's label, which may name a word that is refused in
            # text for blinded readers: the rule's own message (checked at load) instead.
            query = ask(text=rule.query_text())
        if finding is None:
            Finding.objects.create(
                trial=trial,
                rule=record.rule,
                key=record.key,
                participant_id=record.participant_id,
                visit_id=record.visit_id,
                entry_id=record.entry_id,
                item=record.item,
                query=query,
            )
        else:
            finding.query, finding.state = query, Finding.State.OPEN
            finding.save(update_fields=["query", "state", "updated_at"])
    tally["opened"] += 1


def _close(rule, finding, by, tally):
    with transaction.atomic():
        queries.close_rule_query(
            finding.query,
            by=by,
            text=f"Closed by itself: the data no longer breaks the rule “{rule.name}”.",
        )
        _mark(finding, Finding.State.FIXED)
    tally["closed"] += 1


def _mark(finding, state):
    finding.state = state
    finding.save(update_fields=["state", "updated_at"])


# --- When a form is saved ------------------------------------------------------------------


@dataclass(frozen=True)
class SaveFinding:
    code: str
    name: str
    severity: str
    message: str
    items: tuple[str, ...]  # the form's items it is shown beside; empty: the whole form


@crf.checks_saves
def check_on_save(visit, instrument, values, scores):
    """What the rules say of these values of `instrument` at `visit`, before they are saved."""
    findings = []
    for rule in instrument.rules:
        item = form_rule_breaks(rule, instrument, values, scores)
        if item is not None:
            findings.append(
                SaveFinding(
                    f"{instrument.code}.{rule.code}",
                    rule.name,
                    rule.severity,
                    rule.message,
                    rule.items,
                )
            )
    trial = visit.participant.trial
    findings += _trial_rules_on_save(trial, visit, instrument, values, scores)
    findings += _outliers_on_save(trial, instrument, values)
    return findings


def _trial_rules_on_save(trial, visit, instrument, values, scores):
    cached = rules_for_saves(trial)
    rules = cached.reading.get(instrument.code, ())
    if not rules:
        return []
    codes = list(cached.codes)
    participant = visit.participant
    forms = sorted({form for rule in rules for form in rule.forms} - {instrument.code})
    entries = (
        FormEntry.objects.counting()
        .filter(participant=participant, instrument__in=forms, visit__isnull=False)
        .values_list(*checks.ENTRY_COLUMNS)
    )
    data = checks.load_data(
        [(participant.pk, participant.randomized_on)],
        codes,
        forms,
        visits=Visit.objects.filter(participant=participant).values_list(*checks.VISIT_COLUMNS),
        entries=list(entries),
        withdrawals=any("withdrawn_on" in rule.check.reads for rule in rules),
    )[participant.pk]
    index = codes.index(visit.timepoint.code)
    here = data.visits.get(index)
    if here is None:
        return []
    here.forms[instrument.code] = (None, values, scores)
    installed = registry.all_instruments()
    tp_index = {code: i for i, code in enumerate(codes)}
    findings = []
    prefix = f"this|{instrument.code}."
    for rule in rules:
        if trial_rule_breaks(rule, data, index, codes[index], tp_index, installed) is None:
            continue
        items = tuple(
            key[len(prefix) :]
            for key, _ in rule.specs
            if key.startswith(prefix) and ".scores." not in key
        )
        findings.append(SaveFinding(rule.code, rule.name, rule.severity, rule.message, items))
    return findings


def _outliers_on_save(trial, instrument, values):
    """The outlier rule against the distributions of the last run (none before a first run)."""
    numeric = outlier_items(instrument)
    if not numeric:
        return []
    stats = (
        RuleRun.objects.filter(trial=trial, status=RuleRun.Status.DONE)
        .order_by("-finished_at", "-pk")
        .values_list(f"stats__{instrument.code}", flat=True)
        .first()
    )
    findings = []
    for code in numeric:
        value = values.get(code)
        if not stats or code not in stats or isinstance(value, str | bool) or value is None:
            continue
        median, mad, n = stats[code]
        if n >= OUTLIER_MIN_VALUES and mad > 0 and robust_z(value, median, mad) > OUTLIER_Z:
            findings.append(
                SaveFinding(
                    "outlier",
                    "Value far outside this trial's values",
                    "warning",
                    f"{instrument.item(code).label} is {value:g}, far from this trial's other "
                    f"values (median {median:g}): check it against the source.",
                    (code,),
                )
            )
    return findings
