"""Which records of a trial break which rule, now: a fixed number of SQL statements whatever the
number of participants (the built-in rules are SQL over the counting entries; the expression
rules read only the forms they name, once, and are evaluated in Python).

Contract: `find(trial, rules)` -> ({(rule code, record key): Record}, stats). It reads only
form values and scores, visit dates and windows, randomization dates and withdrawals from
follow-up or data use (Withdrawal.objects.follow_up()): never an arm or anything that tells it.
The data of record is FormEntry.objects.counting(); entries without a visit are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce, TruncDate

from assessments import registry
from assessments.models import FormEntry, Visit
from imrtrial.models import Participant
from randomization.models import Withdrawal

from .rules import (
    OUTLIER_MIN_VALUES,
    OUTLIER_Z,
    ParticipantData,
    VisitData,
    form_rule_breaks,
    outlier_items,
    trial_rule_breaks,
)


@dataclass(frozen=True)
class Record:
    rule: str
    participant_id: int
    visit_id: int
    entry_id: int | None
    item: str
    detail: str = ""  # the query text's detail, where the rule's message is not enough

    @property
    def key(self):
        return f"v{self.visit_id}:e{self.entry_id or ''}:{self.item}"


def _counting_sql(trial):
    query = FormEntry.objects.counting().filter(participant__trial=trial).values("id").query
    return query.sql_with_params()


def find(trial, rules):
    """Every record breaking a rule, and the per-item distributions (for the outlier rule)."""
    by_code = {rule.code: rule for rule in rules}
    found = {}

    def add(record):
        found[(record.rule, record.key)] = record

    installed = registry.all_instruments()
    schedule = list(trial.timepoints.values_list("code", "instruments"))
    instruments = sorted({code for _, codes in schedule for code in codes if code in installed})
    stats = {}
    if "required_blank" in by_code:
        for record in _required_blank(trial, instruments, installed):
            add(record)
    if "outlier" in by_code:
        records, stats = _outliers(trial, instruments, installed)
        for record in records:
            add(record)
    if "out_of_window" in by_code:
        for record in _out_of_window(trial):
            add(record)
    if "after_withdrawal" in by_code:
        for record in _after_withdrawal(trial):
            add(record)
    expression_rules = [r for r in rules if r.check is not None]
    if expression_rules:
        for record in _expression_rules(trial, expression_rules, schedule, installed):
            add(record)
    return found, stats


def _required_blank(trial, instruments, installed):
    pairs = [(code, item.code) for code in instruments for item in installed[code].items]
    pairs = [(c, i) for c, i in pairs if installed[c].item(i).required]
    if not pairs:
        return []
    counting, params = _counting_sql(trial)
    # Consent withdrawn (level 3) erases the values: those forms are blank by design.
    sql = f"""
        SELECT e.id, e.participant_id, e.visit_id, e.instrument, r.code
        FROM assessments_formentry e
        JOIN unnest(%s::text[], %s::text[]) AS r(instrument, code) ON r.instrument = e.instrument
        WHERE e.id IN ({counting}) AND e.visit_id IS NOT NULL
          AND NOT jsonb_exists(e."values", r.code)
          AND NOT EXISTS (
            SELECT 1 FROM randomization_withdrawal w
            WHERE w.participant_id = e.participant_id AND w.level = %s)
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [[c for c, _ in pairs], [i for _, i in pairs], *params, Withdrawal.Level.CONSENT],
        )
        return [
            Record(
                "required_blank",
                participant_id,
                visit_id,
                entry_id,
                code,
                f"{installed_label(installed, instrument, code)} is required and blank on "
                "this complete form: enter its value or a missing-value code (ND, RF, NA).",
            )
            for entry_id, participant_id, visit_id, instrument, code in cursor.fetchall()
        ]


def installed_label(installed, instrument, code):
    try:
        return installed[instrument].item(code).label
    except KeyError:
        return code


def _outliers(trial, instruments, installed):
    """Robust z from the median and MAD of each numeric item over the trial's counting
    entries, all computed in one SQL statement."""
    pairs = [(code, item) for code in instruments for item in outlier_items(installed[code])]
    if not pairs:
        return [], {}
    counting, params = _counting_sql(trial)
    # The counting entries once (not a semi-join per item), then one row per numeric value.
    sql = f"""
        WITH c AS MATERIALIZED (
            SELECT e.id, e.participant_id, e.visit_id, e.instrument, e."values"
            FROM assessments_formentry e
            WHERE e.id IN ({counting}) AND e.visit_id IS NOT NULL
        ), v AS MATERIALIZED (
            SELECT c.id, c.participant_id, c.visit_id, c.instrument, r.code,
                   (c."values" ->> r.code)::float8 AS x
            FROM c JOIN unnest(%s::text[], %s::text[]) AS r(instrument, code)
              ON r.instrument = c.instrument
            WHERE jsonb_typeof(c."values" -> r.code) = 'number'
        ), m AS MATERIALIZED (
            SELECT instrument, code, count(*) AS n,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS med
            FROM v GROUP BY instrument, code
        ), d AS MATERIALIZED (
            SELECT v.instrument, v.code,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(v.x - m.med)) AS mad
            FROM v JOIN m USING (instrument, code) GROUP BY v.instrument, v.code
        ), s AS MATERIALIZED (
            SELECT m.instrument, m.code, m.med, d.mad, m.n
            FROM m JOIN d USING (instrument, code)
        )
        SELECT 'stat', s.instrument, s.code, NULL::int, NULL::int, NULL::int, NULL::float8,
               s.med, s.mad, s.n
        FROM s
        UNION ALL
        SELECT 'flag', v.instrument, v.code, v.id, v.participant_id, v.visit_id, v.x,
               s.med, s.mad, s.n
        FROM v JOIN s USING (instrument, code)
        WHERE s.n >= %s AND s.mad > 0 AND abs(v.x - s.med) > %s * 1.4826 * s.mad
    """
    stats, records = {}, []
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot estimate rows of CTEs and would join 200,000 values to the 130
        # medians in a nested loop (seconds per thousand participants): hash joins, and sorts
        # in memory, for this one statement.
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(
            sql,
            [
                *params,
                [c for c, _ in pairs],
                [i for _, i in pairs],
                OUTLIER_MIN_VALUES,
                OUTLIER_Z,
            ],
        )
        for kind, instrument, code, entry_id, p_id, visit_id, x, med, mad, n in cursor:
            if kind == "stat":
                stats.setdefault(instrument, {})[code] = [float(med), float(mad), int(n)]
                continue
            label = installed_label(installed, instrument, code)
            records.append(
                Record(
                    "outlier",
                    p_id,
                    visit_id,
                    entry_id,
                    code,
                    f"{label} is {_number(x)}, far from this trial's other values (median "
                    f"{_number(med)}): check it against the source.",
                )
            )
    return records, stats


def _number(value):
    value = float(value)
    return f"{value:g}"


def _out_of_window(trial):
    visits = (
        Visit.objects.filter(participant__trial=trial, completed_on__isnull=False)
        .exclude(completed_on__range=(F("window_start"), F("window_end")))
        .values_list("participant_id", "pk")
    )
    return [Record("out_of_window", p_id, v_id, None, "") for p_id, v_id in visits]


def _after_withdrawal(trial):
    """Counting forms of a visit done (or, while it is not, a form saved) after the first
    withdrawal from follow-up or data use. Stopping the intervention is never read."""
    first = (
        Withdrawal.objects.follow_up()
        .filter(participant=OuterRef("participant"))
        .order_by("withdrawn_on")
        .values("withdrawn_on")[:1]
    )
    entries = (
        FormEntry.objects.counting()
        .filter(participant__trial=trial, visit__isnull=False)
        .annotate(
            withdrawn=Subquery(first),
            dated=Coalesce("visit__completed_on", TruncDate("updated_at")),
        )
        .filter(withdrawn__isnull=False, withdrawn__lt=F("dated"))
        .values_list("participant_id", "visit_id", "pk")
    )
    return [Record("after_withdrawal", p, v, e, "") for p, v, e in entries]


def first_follow_up_withdrawals(participants):
    """{participant id: first withdrawal date from follow-up or data use}."""
    dates = {}
    for p_id, day in (
        Withdrawal.objects.follow_up()
        .filter(participant__in=participants)
        .order_by("withdrawn_on")
        .values_list("participant_id", "withdrawn_on")
    ):
        dates.setdefault(p_id, day)
    return dates


def load_data(participants, timepoint_codes, forms, *, visits, entries, withdrawals=True):
    """{participant id: ParticipantData} from rows: participants (id, randomized_on), visits
    (id, participant id, timepoint code, dates...), entries (id, participant id, timepoint,
    instrument, values, scores)."""
    tp_index = {code: i for i, code in enumerate(timepoint_codes)}
    ids = [p_id for p_id, _ in participants]
    withdrawn = first_follow_up_withdrawals(ids) if withdrawals else {}
    data = {
        p_id: ParticipantData(p_id, randomized, withdrawn.get(p_id))
        for p_id, randomized in participants
    }
    for v_id, p_id, code, completed, target, start, end in visits:
        if p_id in data and code in tp_index:
            data[p_id].visits[tp_index[code]] = VisitData(
                v_id,
                {
                    "completed_on": completed,
                    "target_date": target,
                    "window_start": start,
                    "window_end": end,
                },
            )
    for e_id, p_id, timepoint, instrument, values, scores in entries:
        visit = data[p_id].visits.get(tp_index.get(timepoint)) if p_id in data else None
        if visit is not None:
            visit.forms[instrument] = (e_id, values, scores or {})
    return data


VISIT_COLUMNS = (
    "pk",
    "participant_id",
    "timepoint__code",
    "completed_on",
    "target_date",
    "window_start",
    "window_end",
)
ENTRY_COLUMNS = ("pk", "participant_id", "timepoint", "instrument", "values", "scores")


def _expression_rules(trial, rules, schedule, installed):
    codes = [code for code, _ in schedule]
    tp_index = {code: i for i, code in enumerate(codes)}
    forms = sorted({form for rule in rules for form in rule.forms})
    participants = Participant.objects.filter(trial=trial).values_list("pk", "randomized_on")
    visits = Visit.objects.filter(participant__trial=trial).values_list(*VISIT_COLUMNS)
    entries = (
        FormEntry.objects.counting()
        .filter(participant__trial=trial, instrument__in=forms, visit__isnull=False)
        .values_list(*ENTRY_COLUMNS)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Rows are read through a server-side cursor (memory stays flat), for which PostgreSQL
        # plans for the first 10% of rows by default: a nested-loop anti-join that took 19 s at
        # 5,000 participants instead of 1 s. The whole result is wanted.
        cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        data = load_data(
            list(participants),
            codes,
            forms,
            visits=visits.iterator(chunk_size=5000),
            entries=entries.iterator(chunk_size=2000),
        )
    trial_rules = [r for r in rules if r.kind == "trial"]
    form_rules = [r for r in rules if r.kind == "form"]
    records = []
    for p_id, p_data in data.items():
        for index, visit in p_data.visits.items():
            for rule in trial_rules:
                hit = trial_rule_breaks(rule, p_data, index, codes[index], tp_index, installed)
                if hit is not None:
                    records.append(Record(rule.code, p_id, visit.visit_id, hit[0], hit[1]))
            for rule in form_rules:
                form = visit.forms.get(rule.instrument)
                if form is None:
                    continue
                item = form_rule_breaks(rule, installed.get(rule.instrument), form[1], form[2])
                if item is not None:
                    records.append(Record(rule.code, p_id, visit.visit_id, form[0], item))
    return records
