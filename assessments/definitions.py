"""Instruments as data: parse, check and apply the YAML definitions in assessments/instruments/.

No Django import (the file's schema is plain pydantic, with imrtrial.schema's types): a
definition is parsed and checked, and a form's raw input is cleaned and scored, by plain
functions that can be tested (Hypothesis) and benchmarked alone.

Values as stored (JSON): integer and choice items as int, decimal as float, boolean as bool,
date as "YYYY-MM-DD", text as str, a missing-value code as its code ("ND", "RF", "NA"), and an
unanswered item is absent.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, WithJsonSchema, model_validator

from imrtrial import schema

from .expressions import ExpressionError, compile_expression

RATERS = ("assessor_interview", "self_report", "staff", "records")
# What the pages say for each (the YAML keeps the short codes).
RATER_LABELS = {
    "assessor_interview": "Assessor interview",
    "self_report": "Self-report",
    "staff": "Clinical staff",
    "records": "Records",
}
TYPES = ("integer", "decimal", "choice", "boolean", "date", "text")
SCORED_TYPES = ("integer", "decimal", "choice")
# The item types that reach an export, in every format (CSV, SPSS, Stata, ODM): an allow-list,
# so a type added to TYPES stays out of every export until it is added here and each writer
# knows it (tests/exports/test_exported_items.py). Free text ("text") is never exported: a note
# can name a group session, a facilitator or the participant, revealing the allocation or the
# person, and no rule can screen free text reliably.
EXPORTED_TYPES = frozenset({"integer", "decimal", "choice", "boolean", "date"})
# A data quality rule reads what a blinded reader may: the exported items, never free text
# (which unblinded staff may write, and a blinded reader sees only as "text exists"): its
# outcome (a count, a query, a warning on the entry page) is shown to blinded readers.
FREE_TEXT_REFUSED = (
    "{name!r} is free text, which may be written by unblinded staff: a rule may not read it"
)
# The missing-value codes every instrument takes unless its file names others; their meanings in
# the languages the site speaks, as a file's labels are (exports write the English).
DEFAULT_MISSING = {
    "ND": schema.Translated("Not done", {"da": "Ikke udført", "nl": "Niet afgenomen"}),
    "RF": schema.Translated("Refused", {"da": "Afvist", "nl": "Geweigerd"}),
    "NA": schema.Translated("Not applicable", {"da": "Ikke relevant", "nl": "Niet van toepassing"}),
}
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_MISSING_CODE = re.compile(r"^[A-Z]{1,3}$")
INSTRUMENTS_DIR = Path(__file__).resolve().parent / "instruments"


class DefinitionError(ValueError):
    def __init__(self, source, problems):
        self.source, self.problems = source, list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class Item:
    code: str
    label: str
    type: str
    section: str
    required: bool = True
    min: float | None = None
    max: float | None = None
    choices: tuple[tuple[int, str], ...] = ()
    max_length: int = 2000

    @property
    def scored(self):
        return self.type in SCORED_TYPES

    def bounds(self):
        """(lowest, highest) value a scored item can take."""
        if self.type == "choice":
            values = [v for v, _ in self.choices]
            return min(values), max(values)
        return self.min, self.max


@dataclass(frozen=True)
class Score:
    code: str
    label: str
    method: str  # sum | mean
    items: tuple[str, ...]
    min: float | None = None
    max: float | None = None
    prorate_min_items: int | None = None
    # Items scored the other way round in this score: an answer x counts as (lowest + highest
    # - x) of that item's range (e.g. the ISMI's stigma-resistance items in its total). The
    # score's range is unchanged, since a reversed item keeps its range.
    reverse: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormRule:
    """A data quality check inside one form (the instrument file's `rules:`): when `check` is
    true of a complete form, the form breaks the rule. Its expression names the form's items
    (`p1`) and scores (`scores.total`); parsed once, here (assessments.expressions)."""

    code: str
    name: str
    message: str
    severity: str  # warning | error
    check: object  # expressions.Compiled

    @property
    def items(self):
        """The items it reads, in order (where its warnings and queries are shown)."""
        return tuple(key for key in self.check.reads if not key.startswith("scores."))


SEVERITIES = ("warning", "error")


@dataclass(frozen=True)
class Instrument:
    code: str
    name: str
    version: int
    rater: str
    status: str
    source: str
    notes: str
    missing_codes: Mapping[str, str]
    sections: tuple[tuple[str, str, tuple[Item, ...]], ...]
    scores: tuple[Score, ...]
    rules: tuple[FormRule, ...] = ()
    _by_code: Mapping[str, Item] = field(default_factory=dict, repr=False, compare=False)

    @property
    def items(self):
        return tuple(item for _, _, items in self.sections for item in items)

    @property
    def exported_items(self):
        """The items that reach an export (EXPORTED_TYPES), in definition order."""
        return tuple(item for item in self.items if item.type in EXPORTED_TYPES)

    @property
    def rater_label(self):
        return RATER_LABELS.get(self.rater, self.rater)

    @property
    def staff_rated(self):
        """Rated by clinical staff (e.g. the IMRS clinician version): the rater may be the
        participant's IMR facilitator, so who entered it can reveal the arm. For a code that
        may no longer be installed, ask registry.is_staff_rated."""
        return self.rater == "staff"

    def item(self, code):
        return self._by_code[code]


def _number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- The definition file's schema (pydantic, stated once; imrtrial.schema) ----------------------
# The shapes below; the rules across keys (a score's items exist and are numeric, a declared
# range is the items' range, a rule's expression names only this form) in parse().

# A whole number stays whole (an integer item's range is checked for it).
_Number = Annotated[
    Any, BeforeValidator(lambda v: _checked_number(v)), WithJsonSchema({"type": "number"})
]
_Code = schema.matching(_CODE.pattern[1:-1], "a lower-case code such as 'panss'")
_Label = schema.label(300)


def _checked_number(value):
    if not _number(value):
        raise schema.fail(f"must be a number (got {value!r})")
    return value


class ChoiceSpec(schema.Strict):
    value: schema.whole(what="a whole number")
    label: _Label | None = None


class ItemSpec(schema.Strict):
    code: _Code
    label: _Label | None = None
    type: Literal[TYPES]
    required: schema.Boolean = True
    min: _Number | None = None
    max: _Number | None = None
    choices: list[ChoiceSpec] | None = None
    max_length: schema.PositiveInt = 2000

    @model_validator(mode="after")
    def _kind(self):
        if self.type in ("integer", "decimal"):
            if self.min is None or self.max is None or self.min > self.max:
                raise schema.fail("needs numeric min <= max")
            whole = all(isinstance(x, int) for x in (self.min, self.max))
            if self.type == "integer" and not whole:
                raise schema.fail("an integer item needs whole-number min and max")
        if self.type == "choice":
            if not self.choices:
                raise schema.fail("choices: needs a list of {value, label}")
            if len({c.value for c in self.choices}) != len(self.choices):
                raise schema.fail("choices: values must be unique")
        return self


class SectionSpec(schema.Strict):
    code: str = ""
    label: _Label = ""
    items: list[ItemSpec]


class ScoreSpec(schema.Strict):
    code: _Code
    label: _Label | None = None
    method: Literal["sum", "mean"]
    items: Literal["all"] | schema.nonempty_list(str)
    min: _Number | None = None
    max: _Number | None = None
    prorate_min_items: schema.PositiveInt | None = None
    reverse: schema.list_of(str, "must be a list of the score's own items") = []


class RuleSpec(schema.Strict):
    code: schema.matching(_RULE_CODE.pattern[1:-1], "a unique lower-case code")
    name: schema.text(300)
    message: schema.text(300)
    severity: Literal[SEVERITIES] = "warning"
    check: str


class InstrumentFile(schema.Strict):
    code: _Code
    name: schema.label(200)  # per language, like the labels; exports write the English
    version: schema.PositiveInt
    rater: Literal[RATERS]
    status: Literal["verified", "unverified"] = "verified"
    source: str = ""
    notes: str = ""
    missing_codes: dict[
        schema.matching(_MISSING_CODE.pattern[1:-1], "1-3 capital letters"), _Label
    ] = DEFAULT_MISSING
    sections: schema.nonempty_list(SectionSpec)
    scores: list[ScoreSpec] | None = None
    rules: list[RuleSpec] | None = None


def json_schema():
    """The instrument file's JSON Schema, for an editor (`manage.py trial_schema --instrument`)."""
    return InstrumentFile.model_json_schema()


def _where(data, loc):
    """A problem's place, naming the item or rule (its code) as the file's reader looks for it:
    ('sections', 0, 'items', 1, 'type') -> 'sections[0].items[1] (p2).type'."""
    text, node = "", data
    for n, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            parent = loc[n - 1] if n else None
            named = isinstance(node, Mapping) and isinstance(node.get("code"), str)
            if parent in ("items", "rules") and named:
                text += f" ({node['code']})"
        else:
            text += f".{part}" if text else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
    return text


def parse(data, source="<definition>"):
    """Check one definition (a mapping from YAML); return an Instrument or raise
    DefinitionError naming every problem."""
    if not isinstance(data, Mapping):
        raise DefinitionError(source, ["the file must be a mapping"])
    # Each part checked on its own, so that a bad item hides neither the other items' problems
    # nor the scores' and rules' (an item that did not validate is a schema.Partial).
    spec, problems = schema.validate_parts(
        InstrumentFile, dict(data), top="", where=lambda loc: _where(data, loc)
    )
    fail = problems.append
    sections, by_code, named = [], {}, set()
    for s, section in enumerate(spec.get("sections") or []):
        items = []
        for i, raw in enumerate(section.items or []):
            if raw.code in named:
                fail(f"sections[{s}].items[{i}]: duplicate item code {raw.code!r}")
                continue
            named.add(raw.code)
            if isinstance(raw, schema.Partial):
                continue
            item = Item(
                code=raw.code,
                label=raw.label if raw.label is not None else raw.code,
                type=raw.type,
                section=section.code or "",
                required=raw.required,
                min=raw.min,
                max=raw.max,
                choices=tuple(
                    (c.value, c.label if c.label is not None else str(c.value))
                    for c in raw.choices or ()
                )
                if raw.type == "choice"
                else (),
                max_length=raw.max_length,
            )
            by_code[item.code] = item
            items.append(item)
        sections.append((section.code or "", section.label or "", tuple(items)))
    scores = _scores(spec.get("scores") or [], by_code, named, fail)
    rules = _parse_rules(spec.get("rules"), by_code, {s.code for s in scores}, fail)
    if problems:
        raise DefinitionError(source, problems)
    return Instrument(
        code=spec["code"],
        name=spec["name"],
        version=spec["version"],
        rater=spec["rater"],
        status=spec["status"],
        source=spec["source"],
        notes=spec["notes"],
        missing_codes=dict(spec["missing_codes"]),
        sections=tuple(sections),
        scores=tuple(scores),
        rules=rules,
        _by_code=by_code,
    )


def _scores(specs, by_code, named, fail):
    """The scores, each checked against the items it reads (`named`: every item code given,
    valid or not, so that a bad item is not reported again as unknown here)."""
    scores, codes = [], set()
    for n, raw in enumerate(specs):
        where = f"scores[{n}]"
        if isinstance(raw, schema.Partial):
            continue
        if raw.code in codes:
            fail(f"{where}.code: must be a unique lower-case code")
            continue
        codes.add(raw.code)
        names = [c for c, it in by_code.items() if it.scored] if raw.items == "all" else raw.items
        unknown = [x for x in names if x not in named]
        if unknown:
            fail(f"{where}.items: unknown item(s) {', '.join(map(str, unknown))}")
            continue
        if any(x not in by_code for x in names):
            continue  # an item it reads has its own problem
        unscored = [x for x in names if not by_code[x].scored]
        if unscored:
            fail(f"{where}.items: {', '.join(unscored)} cannot be scored (not numeric)")
            continue
        if raw.prorate_min_items is not None and raw.prorate_min_items > len(names):
            fail(f"{where}.prorate_min_items: must be from 1 to {len(names)}")
            continue
        if not all(x in names for x in raw.reverse):
            fail(f"{where}.reverse: must be a list of the score's own items")
            continue
        if len(set(raw.reverse)) != len(raw.reverse):
            fail(f"{where}.reverse: lists an item twice")
            continue
        score = Score(
            raw.code,
            raw.label if raw.label is not None else raw.code,
            raw.method,
            tuple(names),
            raw.min,
            raw.max,
            raw.prorate_min_items,
            tuple(raw.reverse),
        )
        _check_score_range(score, by_code, where, fail)
        scores.append(score)
    return scores


_RULE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _parse_rules(specs, by_code, score_codes, fail):
    """The form's data quality rules; every problem named with its place (rules[n])."""
    if specs is None:
        return ()

    def resolve(parts):
        if len(parts) == 1 and parts[0] in by_code:
            if by_code[parts[0]].type not in EXPORTED_TYPES:
                raise ExpressionError(FREE_TEXT_REFUSED.format(name=parts[0]))
            return parts[0]
        if len(parts) == 2 and parts[0] == "scores" and parts[1] in score_codes:
            return f"scores.{parts[1]}"
        raise ExpressionError(
            f"unknown name {'.'.join(parts)!r}: an item of this form, or scores.<score code>"
        )

    rules, codes = [], set()
    for n, raw in enumerate(specs):
        if isinstance(raw, schema.Partial):
            continue
        where = f"rules[{n}] ({raw.code})"
        if raw.code in codes:
            fail(f"rules[{n}].code: must be a unique lower-case code")
            continue
        codes.add(raw.code)
        try:
            check = compile_expression(raw.check, resolve)
        except ExpressionError as exc:
            fail(f"{where}.check: {exc}")
            continue
        rules.append(FormRule(raw.code, raw.name.strip(), raw.message.strip(), raw.severity, check))
    return tuple(rules)


def _check_score_range(score, by_code, where, fail):
    """A declared range must be the range the items allow: a self-check of the definition."""
    bounds = [by_code[c].bounds() for c in score.items]
    if score.method == "sum":
        lo, hi = sum(b[0] for b in bounds), sum(b[1] for b in bounds)
    else:
        lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
    if score.min is not None and not math.isclose(score.min, lo):
        fail(f"{where} ({score.code}).min: {score.min} but the items allow {lo}")
    if score.max is not None and not math.isclose(score.max, hi):
        fail(f"{where} ({score.code}).max: {score.max} but the items allow {hi}")


def load_file(path):
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DefinitionError(path.name, [f"cannot read: {exc}"]) from None
    instrument = parse(data, path.name)
    if instrument.code != path.stem:
        raise DefinitionError(path.name, [f"code {instrument.code!r} must match the file name"])
    return instrument


def load_dir(directory=INSTRUMENTS_DIR):
    """Every definition in the folder; one DefinitionError naming every bad file."""
    instruments, problems = {}, []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            instrument = load_file(path)
        except DefinitionError as exc:
            problems.extend(f"{exc.source}: {p}" for p in exc.problems)
        else:
            instruments[instrument.code] = instrument
    if problems:
        raise DefinitionError(str(directory), problems)
    return instruments


# --- Entry ------------------------------------------------------------------------------------


def gettext_noop(message):
    """Marks an entry error for the translation catalogue (makemessages reads this name); the
    page shows it in the reader's language (Problem), and this module stays free of Django."""
    return message


class Problem(str):
    """An entry error: its English text, keeping the message and its values so that a page can
    show it translated (assessments.services.FormInvalid)."""

    def __new__(cls, message, **values):
        text = super().__new__(cls, message % values if values else message)
        text.message, text.values = message, values
        return text


def clean(instrument, raw, *, complete):
    """Raw text per item code -> (values, errors by item code; "__all__" for the form).

    A draft may leave items empty; `complete` needs every required item answered or given a
    missing-value code. Unknown keys (a tampered form) are an error, never ignored."""
    values, errors = {}, {}
    unknown = sorted(set(raw) - {i.code for i in instrument.items})
    if unknown:
        errors["__all__"] = Problem(
            gettext_noop("Unexpected field(s): %(fields)s"), fields=", ".join(unknown[:5])
        )
    for item in instrument.items:
        text = raw.get(item.code)
        text = "" if text is None else str(text).strip()
        if not text:
            if complete and item.required:
                errors[item.code] = Problem(
                    gettext_noop("Required: enter a value or a missing-value code.")
                )
            continue
        if text.upper() in instrument.missing_codes:
            values[item.code] = text.upper()
            continue
        try:
            values[item.code] = _convert(item, text)
        except ValueError as exc:
            errors[item.code] = exc.args[0]  # a Problem: the page shows it translated
    return values, errors


def _convert(item, text):
    if item.type == "integer" or item.type == "choice":
        if not re.fullmatch(r"[+-]?[0-9]{1,9}", text):
            raise ValueError(Problem(gettext_noop("Enter a whole number.")))
        value = int(text)
        if item.type == "choice":
            allowed = [v for v, _ in item.choices]
            if value not in allowed:
                raise ValueError(
                    Problem(
                        gettext_noop("Choose one of %(values)s."),
                        values=", ".join(map(str, allowed)),
                    )
                )
        elif not item.min <= value <= item.max:
            raise ValueError(
                Problem(
                    gettext_noop("Must be from %(min)s to %(max)s."), min=item.min, max=item.max
                )
            )
        return value
    if item.type == "decimal":
        try:
            number = Decimal(text.replace(",", "."))
        except InvalidOperation:
            raise ValueError(Problem(gettext_noop("Enter a number."))) from None
        if not number.is_finite() or not item.min <= number <= item.max:
            raise ValueError(
                Problem(
                    gettext_noop("Must be from %(min)s to %(max)s."), min=item.min, max=item.max
                )
            )
        return float(number)
    if item.type == "boolean":
        lowered = text.lower()
        if lowered in ("1", "y", "yes", "true"):
            return True
        if lowered in ("0", "n", "no", "false"):
            return False
        raise ValueError(Problem(gettext_noop("Enter yes or no.")))
    if item.type == "date":
        try:
            return datetime.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValueError(Problem(gettext_noop("Enter a date as YYYY-MM-DD."))) from None
    if len(text) > item.max_length:
        raise ValueError(Problem(gettext_noop("At most %(max)s characters."), max=item.max_length))
    if "\x00" in text:  # PostgreSQL's jsonb cannot hold it: an item error, never a 500
        raise ValueError(
            Problem(gettext_noop("The text contains a character that cannot be stored (NUL)."))
        )
    return text


def score_decimals(instrument, score):
    """Decimals a score is shown with: none for a sum of whole-number items (a prorated sum is
    rounded to a whole number too, as the scale's own scoring does), two otherwise."""
    whole = all(instrument.item(c).type in ("integer", "choice") for c in score.items)
    return 0 if score.method == "sum" and whole else 2


def shown_scores(instrument, values, scores):
    """The scores of a form as a reader sees them: [(score, text, prorated)], the text rounded
    to the score's decimals ("missing" where there is none); prorated when some of its items
    were not answered and the prorating rule filled them in."""
    out = []
    for score in instrument.scores:
        value = (scores or {}).get(score.code)
        if not _number(value):
            out.append((score, "missing", False))
            continue
        answered = sum(1 for c in score.items if _number((values or {}).get(c)))
        shown = Decimal(str(value)).quantize(
            Decimal(1).scaleb(-score_decimals(instrument, score)), ROUND_HALF_UP
        )  # half up, as a scale's manual rounds (f"{22.5:.0f}" would give 22)
        out.append((score, str(shown), answered < len(score.items)))
    return out


def compute_scores(instrument, values):
    """{score code: value or None}. Missing codes and unanswered items count as missing; a
    score with missing items is None unless its prorating rule allows it."""
    out = {}
    for score in instrument.scores:
        answered = [
            _reversed(instrument.item(c), values[c]) if c in score.reverse else values[c]
            for c in score.items
            if _number(values.get(c))
        ]
        n, total = len(score.items), None
        if len(answered) == n:
            total = sum(answered) if score.method == "sum" else sum(answered) / n
        elif score.prorate_min_items and len(answered) >= score.prorate_min_items:
            mean = sum(answered) / len(answered)
            total = mean * n if score.method == "sum" else mean
        out[score.code] = None if total is None else round(total, 4)
    return out


def _reversed(item, value):
    """An answer scored the other way round on its item's range."""
    lo, hi = item.bounds()
    return lo + hi - value
