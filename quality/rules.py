"""The data quality rules of a trial, and how one is evaluated over a participant's data.

Three kinds, one shape (`Rule`): built-in rules every trial gets (BUILT_IN, found in SQL by
quality.checks), the checks inside one form from its instrument file (`rules:`, parsed by
assessments.definitions), and the trial's own rules from its file (`quality_rules:`, checked
by quality.config at load_trial and kept as TrialRule rows).

A trial rule's expression (assessments.expressions, parsed once per process and text) names:
- `<form>.<item>` and `<form>.scores.<score>`: the form at the visit being checked (an item
  an export carries: never free text, which unblinded staff may write);
- `previous.<form>.<item>`: the same at the timepoint before it in the trial's schedule;
- `visits.<timepoint>.<form>.<item>`: the same at a named timepoint (`visits.baseline...`);
- `visit.date` (the day the visit was done), `visit.target`, `visit.window_start`,
  `visit.window_end`, and the same after `previous.` or `visits.<timepoint>.`;
- `randomized_on`, and `withdrawn_on` (the first withdrawal from follow-up or data use).
Every form it names must be listed in its `forms`; the first listed form is the one its data
query is opened on (a rule listing no form is about the visit). It applies at each visit of
its `timepoints` (all, when not given) where that first form has a counting entry.

Blinding: a rule reads nothing else. The arm, IMR groups, attendance, fidelity and stopping
the intervention (withdrawal level 1) are not names a rule can use, so no finding, count or
query text can depend on them; a rule's name and message are refused at load if they name an
arm (imrtrial.blinding_words), and its queries pass the same check again when opened.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field

from assessments import registry
from assessments.definitions import FREE_TEXT_REFUSED
from assessments.expressions import Compiled, ExpressionError, compile_expression
from assessments.models import DataQuery

Category = DataQuery.Category
VISIT_FIELDS = {
    "date": "completed_on",
    "target": "target_date",
    "window_start": "window_start",
    "window_end": "window_end",
}
PARTICIPANT_FIELDS = ("randomized_on", "withdrawn_on")
# Robust z of a value from the trial's median and MAD (scaled to a standard deviation) beyond
# which it is queried, and the fewest values an item needs before its distribution is used.
# 3.5 is Iglewicz and Hoaglin's cut-off for the modified z-score. Only items with a range of at
# least OUTLIER_MIN_RANGE (GAF, PSP, counts of days or visits): on a short rating scale (1-7)
# every answer is plausible, and a skewed item's small MAD would flag ordinary answers.
OUTLIER_Z = 3.5
OUTLIER_MIN_VALUES = 30
OUTLIER_MIN_RANGE = 20


def outlier_items(instrument):
    """The item codes the outlier rule looks at."""
    return [
        item.code
        for item in instrument.items
        if item.type in ("integer", "decimal") and item.max - item.min >= OUTLIER_MIN_RANGE
    ]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    message: str
    severity: str  # warning | error
    kind: str  # built-in | form | trial
    category: str  # the data query's kind (DataQuery.Category)
    forms: tuple[str, ...] = ()  # what it reads; empty with "every form" or a visit rule
    reads_every_form: bool = False
    check: Compiled | None = None
    timepoints: tuple[str, ...] = ()
    instrument: str = ""  # a form rule's form
    specs: tuple = field(default=(), compare=False)  # (key, how to read it), for evaluation

    @property
    def forms_label(self):
        if self.reads_every_form:
            return "every form"
        return ", ".join(self.forms) or "the visit's dates"

    def query_text(self, detail=""):
        return f"Data quality rule “{self.name}”: {detail or self.message}"


BUILT_IN = (
    Rule(
        code="required_blank",
        name="Required item left blank",
        message="A required item of a complete form is blank: enter its value or a missing-value "
        "code (ND, RF, NA).",
        severity="error",
        kind="built-in",
        category=Category.MISSING,
        reads_every_form=True,
    ),
    Rule(
        code="outlier",
        name="Value far outside this trial's values",
        message=f"The value is more than {OUTLIER_Z:g} robust standard deviations (from the "
        "median and MAD) from this item's median in this trial: check it against the source.",
        severity="warning",
        kind="built-in",
        category=Category.RANGE,
        reads_every_form=True,
    ),
    Rule(
        code="out_of_window",
        name="Visit done outside its window",
        message="The visit was done outside its window: confirm the date, and record the "
        "protocol deviation.",
        severity="warning",
        kind="built-in",
        category=Category.OTHER,
    ),
    Rule(
        code="after_withdrawal",
        name="Form complete after withdrawal from follow-up",
        message="This form is complete for a visit dated after the participant withdrew from "
        "follow-up: check the dates and whether the data may be used.",
        severity="error",
        kind="built-in",
        category=Category.INCONSISTENT,
        reads_every_form=True,
    ),
)


# --- Reading data: keys and specs ------------------------------------------------------------


def trial_resolver(forms, timepoint_codes, instruments):
    """resolve(parts) -> key for a trial rule listing `forms` (see the module docstring)."""

    def resolve(parts):
        dotted = ".".join(parts)
        scope, rest = "this", parts
        if parts[0] == "previous":
            scope, rest = "previous", parts[1:]
        elif parts[0] == "visits":
            if len(parts) < 2 or parts[1] not in timepoint_codes:
                raise ExpressionError(
                    f"{dotted!r}: visits.<timepoint> names one of the trial's timepoints "
                    f"({', '.join(timepoint_codes)})"
                )
            scope, rest = parts[1], parts[2:]
        if scope == "this" and len(rest) == 1 and rest[0] in PARTICIPANT_FIELDS:
            return rest[0]
        if len(rest) == 2 and rest[0] == "visit":
            if rest[1] in VISIT_FIELDS:
                return f"{scope}|visit.{rest[1]}"
            raise ExpressionError(
                f"{dotted!r}: a visit has {', '.join(f'visit.{f}' for f in VISIT_FIELDS)}"
            )
        if not rest or rest[0] not in instruments:
            raise ExpressionError(
                f"unknown name {dotted!r} (a form's item as <form>.<item>, previous.…, "
                f"visits.<timepoint>.…, visit.date, {', '.join(PARTICIPANT_FIELDS)})"
            )
        form = instruments[rest[0]]
        if rest[0] not in forms:
            raise ExpressionError(f"{dotted!r} reads {rest[0]}: list it in the rule's forms")
        if len(rest) == 2 and rest[1] in {i.code for i in form.items}:
            if rest[1] not in {i.code for i in form.exported_items}:
                raise ExpressionError(FREE_TEXT_REFUSED.format(name=dotted))
            return f"{scope}|{rest[0]}.{rest[1]}"
        if len(rest) == 3 and rest[1] == "scores" and rest[2] in {s.code for s in form.scores}:
            return f"{scope}|{rest[0]}.scores.{rest[2]}"
        raise ExpressionError(f"{dotted!r}: {rest[0]} has no such item or score")

    return resolve


def _spec(key):
    """How to read a key: ("participant", field) or (scope, "visit", field) or
    (scope, form, "item"|"score", code)."""
    if "|" not in key:
        return ("participant", key)
    scope, path = key.split("|", 1)
    parts = path.split(".")
    if parts[0] == "visit":
        return (scope, "visit", VISIT_FIELDS[parts[1]])
    if len(parts) == 3:
        return (scope, parts[0], "score", parts[2])
    return (scope, parts[0], "item", parts[1])


@functools.lru_cache(maxsize=512)
def compile_trial_check(text, forms, timepoint_codes):
    """A trial rule's expression, parsed once per process (the rows hold the checked text)."""
    resolve = trial_resolver(forms, timepoint_codes, registry.all_instruments())
    return compile_expression(text, resolve)


def trial_rule(row, timepoint_codes):
    check = compile_trial_check(row.expression, tuple(row.forms), tuple(timepoint_codes))
    return Rule(
        code=row.code,
        name=row.name,
        message=row.message,
        severity=row.severity,
        kind="trial",
        category=Category.INCONSISTENT,
        forms=tuple(row.forms),
        check=check,
        timepoints=tuple(row.timepoints),
        specs=tuple((key, _spec(key)) for key in check.reads),
    )


def form_rule(instrument, rule):
    return Rule(
        code=f"{instrument.code}.{rule.code}",
        name=rule.name,
        message=rule.message,
        severity=rule.severity,
        kind="form",
        category=Category.INCONSISTENT,
        forms=(instrument.code,),
        check=rule.check,
        instrument=instrument.code,
    )


def instruments_of(trial_timepoints):
    """The instrument codes of a schedule ([(code, instruments)]), in order of first use."""
    seen = {}
    for _, codes in trial_timepoints:
        for code in codes:
            seen.setdefault(code, None)
    return list(seen)


def rules_of(trial):
    """Every rule of the trial, in the order the rules page lists them."""
    from .models import TrialRule

    schedule = list(trial.timepoints.values_list("code", "instruments"))
    installed = registry.all_instruments()
    rules = list(BUILT_IN)
    for code in instruments_of(schedule):
        if code in installed:
            rules += [form_rule(installed[code], r) for r in installed[code].rules]
    codes = [c for c, _ in schedule]
    rules += [trial_rule(row, codes) for row in TrialRule.objects.filter(trial=trial)]
    return rules


# --- The rules a save asks (quality.services.check_on_save) ------------------------------


@dataclass(frozen=True)
class _SaveRules:
    """A trial's rules as the save check asks them: its schedule's timepoint codes, and the
    trial rules (compiled) that read each form."""

    codes: tuple
    reading: dict  # instrument code -> (Rule, ...)


# {trial pk: (trial created_at, _SaveRules)}, per process. A trial's rules and schedule are
# written once, with the trial (imrtrial.trialconfig.create_trial, and quality.config.create for
# the rules, which forgets the trial here), and never changed after: the entry is valid for the
# trial's life. The creation time in the key also tells apart a trial that reuses the pk of a
# deleted one (a test database's).
_save_rules = {}


def forget_save_rules(trial):
    """After the trial's rules were written (quality.config.create)."""
    _save_rules.pop(trial.pk, None)


def rules_for_saves(trial):
    """The trial's _SaveRules, read and compiled once per process."""
    from .models import TrialRule

    cached = _save_rules.get(trial.pk)
    if cached is not None and cached[0] == trial.created_at:
        return cached[1]
    codes = tuple(trial.timepoints.values_list("code", flat=True))
    reading = {}
    # A trial has a few rules: grouped here, not by a JSON lookup the demo's SQLite lacks.
    for row in TrialRule.objects.filter(trial=trial):
        rule = trial_rule(row, codes)
        for form in rule.forms:
            reading.setdefault(form, []).append(rule)
    found = _SaveRules(codes, {form: tuple(rules) for form, rules in reading.items()})
    _save_rules[trial.pk] = (trial.created_at, found)
    return found


# --- Evaluating over one participant's data -----------------------------------------------


@dataclass
class VisitData:
    visit_id: int
    dates: dict  # model field -> date
    forms: dict = field(default_factory=dict)  # instrument -> (entry id, values, scores)


@dataclass
class ParticipantData:
    """A participant's visits by timepoint index (the trial's schedule order)."""

    participant_id: int
    randomized_on: datetime.date | None
    withdrawn_on: datetime.date | None
    visits: dict = field(default_factory=dict)  # timepoint index -> VisitData


def convert(instrument, code, value):
    """A stored value as a rule reads it: missing-value codes and absence are None, dates are
    dates."""
    if value is None or instrument is None:
        return None
    if isinstance(value, str):
        if value in instrument.missing_codes:
            return None
        try:
            if instrument.item(code).type == "date":
                return datetime.date.fromisoformat(value)
        except (KeyError, ValueError):
            return value
    return value


def read(spec, data, index, tp_index, installed):
    """The value `spec` names for the visit at schedule position `index`."""
    if spec[0] == "participant":
        return getattr(data, spec[1])
    scope = spec[0]
    if scope == "this":
        at = index
    elif scope == "previous":
        at = index - 1
    else:
        at = tp_index.get(scope)
    visit = data.visits.get(at)
    if visit is None:
        return None
    if spec[1] == "visit":
        return visit.dates.get(spec[2])
    form = visit.forms.get(spec[1])
    if form is None:
        return None
    if spec[2] == "score":
        return form[2].get(spec[3])
    return convert(installed.get(spec[1]), spec[3], form[1].get(spec[3]))


def trial_rule_breaks(rule, data, index, tp_code, tp_index, installed):
    """(entry id, item) of the record if `rule` breaks at this visit, else None."""
    if rule.timepoints and tp_code not in rule.timepoints:
        return None
    visit = data.visits.get(index)
    if visit is None:
        return None
    entry_id, item = None, ""
    if rule.forms:
        anchor = visit.forms.get(rule.forms[0])
        if anchor is None:
            return None
        entry_id = anchor[0]
        prefix = f"this|{rule.forms[0]}."
        item = next(
            (
                k[len(prefix) :]
                for k, _ in rule.specs
                if k.startswith(prefix) and ".scores." not in k
            ),
            "",
        )
    names = {key: read(spec, data, index, tp_index, installed) for key, spec in rule.specs}
    if rule.check.evaluate(names):
        return entry_id, item
    return None


def form_rule_breaks(rule, instrument, values, scores):
    """The item the rule is shown beside if the form's values break it, else None."""
    names = {}
    for key in rule.check.reads:
        if key.startswith("scores."):
            names[key] = scores.get(key[7:])
        else:
            names[key] = convert(instrument, key, values.get(key))
    if rule.check.evaluate(names):
        return next((k for k in rule.check.reads if not k.startswith("scores.")), "")
    return None


def robust_z(value, median, mad):
    return abs(value - median) / (1.4826 * mad)
