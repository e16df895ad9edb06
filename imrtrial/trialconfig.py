"""Trial configuration from YAML: the two shipped presets and any third trial.

Contract: `load_trial(source)` validates the whole file first and raises TrialConfigError naming
every problem it found (with its place in the file); only a valid file is written, in one
transaction, so a trial is never half-loaded.
"""

import secrets
import string
from pathlib import Path
from typing import Literal

import yaml
from django.conf import settings
from django.db import transaction
from pydantic import ValidationError

from . import schema
from .models import Arm, EligibilityCriterion, Site, StratificationFactor, Timepoint, Trial

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
# Dates a protocol might name as a visit anchor that differ by arm (only the IMR arm has a group
# or sessions): refused with that reason rather than "unknown".
_ARM_DEPENDENT_ANCHORS = {
    "imr_group_start",
    "imr_group_end",
    "group_start",
    "group_end",
    "first_session",
    "last_session",
    "intervention_start",
    "intervention_end",
    "treatment_start",
    "treatment_end",
}


# Sections a later app adds to the trial's file (quality: `quality_rules`; signoff: `signoff`),
# each with its own schema, check and writer, so this module never imports a later app.
# `schema` (a pydantic model, optional) states the section's shape: a value that does not fit is
# refused with each problem's place, and the check gets the validated model (None when the key is
# absent). `check(checker, value, config)` states the rules across keys (an outcome's timepoint
# must be one of the file's), reports through checker.fail with their place, and returns the
# section's normalized value; `create(trial, value)` writes it inside create_trial's transaction.
_sections = {}


def register_section(key, check, create, *, schema=None):
    if key in _sections:
        raise ValueError(f"Trial file section {key!r} is registered twice.")
    _sections[key] = (check, create, schema)


class TrialConfigError(ValueError):
    def __init__(self, source, problems):
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{listing}")


def preset_names():
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def resolve(name_or_path):
    """A preset name ("danish") or a path to a YAML file."""
    if name_or_path in preset_names():
        return PRESETS_DIR / f"{name_or_path}.yaml"
    return Path(name_or_path)


class _Checker:
    """What a registered section's hand-written check reports through: each problem with its
    place in the file. Sections that declare a schema (register_section(schema=...)) need
    little of it."""

    def __init__(self):
        self.problems = []

    def fail(self, where, message):
        self.problems.append(f"{where}: {message}")

    def mapping(self, value, where):
        if not isinstance(value, dict):
            self.fail(where, "must be a mapping of keys to values")
            return {}
        return value

    def text(self, data, key, where, *, required=True, max_length=200):
        value = data.get(key)
        if value is None:
            if required:
                self.fail(f"{where}.{key}", "is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}.{key}", "must be non-empty text")
            return ""
        if len(value) > max_length:
            self.fail(f"{where}.{key}", f"must be at most {max_length} characters")
        return value

    def unknown_keys(self, data, allowed, where):
        for key in sorted(set(data) - set(allowed), key=str):
            self.fail(where, f"unknown key {key!r}")

    def unique(self, values, where, what):
        for value in schema.duplicates(v for v in values if v):
            self.fail(where, f"duplicate {what} {value!r}")


# The trial file's own keys, stated once. Cross-key rules (codes unique, block sizes against
# the ratio, anchors) are in _RULES below; each registered section states its own.


class ArmSpec(schema.Strict):
    code: schema.Code20
    label: schema.Label60
    ratio: schema.PositiveInt
    intervention: schema.Boolean = False
    # Set only where a trial fixes the neutral codes; otherwise drawn at random at load.
    export_code: schema.matching(r"[A-Z]{1,4}", "1-4 capital letters") | None = None


class Design(schema.Strict):
    method: Literal[tuple(Trial.Method.values)]
    block_sizes: list[schema.PositiveInt] = []
    minimization_p: schema.number(0.5, 1) = 0.8
    baseline_required_before_randomization: schema.Boolean = True


class SiteSpec(schema.Strict):
    code: schema.Code20
    name: schema.Label120
    kind: Literal[tuple(Site.Kind.values)] = Site.Kind.CENTRE.value


class LevelSpec(schema.Strict):
    code: schema.Code30
    label: schema.Label80


class FactorSpec(schema.Strict):
    code: schema.Code30
    label: schema.Label80
    from_site: schema.Boolean = False
    levels: schema.nonempty_list(LevelSpec) | None = None


class CriterionSpec(schema.Strict):
    code: schema.Code40
    text: schema.Label300


class Criteria(schema.Strict):
    inclusion: list[CriterionSpec] = []  # one at least: a rule below says so
    exclusion: schema.nonempty_list(CriterionSpec) | None = None


class TimepointSpec(schema.Strict):
    code: schema.Code30
    label: schema.Label80
    anchor: str = Timepoint.Anchor.RANDOMIZATION.value
    offset_days: schema.whole(what="a whole number of days") = 0
    window_before_days: schema.whole(0, what="a whole number of days") = 30
    window_after_days: schema.whole(0, what="a whole number of days") = 30
    instruments: list[schema.Code40] = []
    ask_blinding_guess: schema.Boolean = False


class TrialFile(schema.Strict):
    """A trial file's own keys (each registered section adds its key beside these)."""

    key: schema.Code40
    name: schema.Text200
    registration_id: schema.text(60) | None = None
    target_sample_size: schema.PositiveInt | None = None
    id_prefix: schema.matching(r"[A-Z]{1,6}", "1-6 capital letters") = "P"
    # The site's language for the trial's staff who chose none (imrtrial.i18n); unset: the
    # browser's.
    language: Literal[schema.LANGUAGES] | None = None
    arms: schema.nonempty_list(ArmSpec)
    design: Design
    sites: schema.nonempty_list(SiteSpec)
    stratification: schema.nonempty_list(FactorSpec)
    criteria: Criteria = Criteria()
    timepoints: list[TimepointSpec] | None = None


def _rule(fn):
    _RULES.append(fn)
    return fn


_RULES = []


@_rule
def _arms(c, f):
    arms = f.get("arms") or []
    if len(arms) == 1:
        c.fail("arms", "a randomized trial needs at least two arms")
    c.unique([a.code for a in arms], "arms", "arm code")
    given = [a.export_code for a in arms if a.export_code]
    c.unique(given, "arms", "export code")
    if given and len(given) != len(arms):
        c.fail("arms", "give export_code for every arm or for none")


@_rule
def _blocks(c, f):
    design = f.get("design")
    if design is None or design.method != Trial.Method.PERMUTED_BLOCKS:
        return
    if not design.block_sizes:
        c.fail("design.block_sizes", "permuted blocks need a non-empty list of block sizes")
    ratio_sum = sum(a.ratio or 0 for a in f.get("arms") or [])
    for j, size in enumerate(design.block_sizes or []):
        if ratio_sum and size % ratio_sum:
            c.fail(
                f"design.block_sizes[{j}]",
                f"{size} is not a multiple of the allocation ratio total {ratio_sum}",
            )


@_rule
def _sites_and_factors(c, f):
    c.unique([s.code for s in f.get("sites") or []], "sites", "site code")
    factors = f.get("stratification") or []
    for i, factor in enumerate(factors):
        if factor.from_site and factor.levels is not None:
            c.fail(
                f"stratification[{i}].levels",
                "a factor taken from the site has the sites as levels",
            )
        elif not factor.from_site and factor.levels is None:
            c.fail(f"stratification[{i}].levels", "must be a non-empty list")
        c.unique(
            [lv.code for lv in factor.levels or []],
            f"stratification[{i}].levels",
            "level code",
        )
    c.unique([x.code for x in factors], "stratification", "factor code")
    if sum(bool(x.from_site) for x in factors) > 1:
        c.fail("stratification", "at most one factor can be taken from the site")


@_rule
def _criteria(c, f):
    criteria = f.get("criteria")
    if criteria is None:
        return
    if not criteria.inclusion:
        c.fail("criteria.inclusion", "a trial needs at least one inclusion criterion")
    c.unique(
        [x.code for x in (criteria.inclusion or []) + (criteria.exclusion or [])],
        "criteria",
        "criterion code",
    )


@_rule
def _timepoints(c, f):
    anchors = set(Timepoint.Anchor.values)
    timepoints = f.get("timepoints") or []
    for i, tp in enumerate(timepoints):
        where = f"timepoints[{i}]"
        if tp.anchor in _ARM_DEPENDENT_ANCHORS:
            c.fail(
                f"{where}.anchor",
                f"{tp.anchor!r} happens in one arm only or on an arm's own timetable; blinded "
                "assessors see visit dates, so a visit anchored on it would tell them the arm. "
                f"Use one of {', '.join(sorted(anchors))}",
            )
        elif tp.anchor not in anchors:
            c.fail(f"{where}.anchor", f"must be one of {', '.join(sorted(anchors))}")
        for code in tp.instruments or []:
            if not (Path(settings.INSTRUMENTS_DIR) / f"{code}.yaml").is_file():
                c.fail(f"{where}.instruments", f"no instrument definition {code!r}")
    c.unique([t.code for t in timepoints], "timepoints", "timepoint code")


@_rule
def _new_key(c, f):
    key = f.get("key")
    if key and Trial.objects.filter(key=key).exists():
        c.fail("file.key", f"a trial with key {key!r} already exists")


def _english_and_others(text):
    """A label's English text and its other languages, as the models keep them."""
    return str(text), dict(getattr(text, "translations", {}))


def _normalize(f):
    """What validated of the file, as the dict create_trial and the sections read (a part
    that did not validate is left out, so the sections can still be checked)."""
    # A timepoint with a sound code is kept, so that the sections' references to it are not
    # refused as echoes of the timepoint's own problem.
    f = {
        key: [
            x
            for x in value
            if not isinstance(x, schema.Partial) or (key == "timepoints" and x.code)
        ]
        if isinstance(value, list)
        else value
        for key, value in f.items()
        if not isinstance(value, schema.Partial)
    }
    arms = []
    for a in f.get("arms") or []:
        label, translations = _english_and_others(a.label)
        arms.append(
            {
                "code": a.code,
                "label": label,
                "translations": translations,
                "ratio": a.ratio,
                "is_intervention": a.intervention,
                "export_code": a.export_code,
            }
        )
    factors = []
    for x in f.get("stratification") or []:
        label, translations = _english_and_others(x.label)
        levels = []
        for lv in x.levels or []:
            text, other = _english_and_others(lv.label)
            levels.append(
                {"code": lv.code, "label": text} | ({"translations": other} if other else {})
            )
        factors.append(
            {
                "code": x.code,
                "label": label,
                "translations": translations,
                "from_site": x.from_site,
                "levels": levels,
            }
        )
    criteria = []
    for kind in EligibilityCriterion.Kind:
        for cr in getattr(f.get("criteria"), kind.value, None) or []:
            text, translations = _english_and_others(cr.text)
            criteria.append(
                {"kind": kind.value, "code": cr.code, "text": text, "translations": translations}
            )
    timepoints = []
    for tp in f.get("timepoints") or []:
        if isinstance(tp, schema.Partial):
            timepoints.append({"code": tp.code, "instruments": tp.instruments or []})
            continue
        label, translations = _english_and_others(tp.label)
        timepoints.append(
            {**tp.model_dump(exclude={"label"}), "label": label, "translations": translations}
        )
    sites = []
    for s in f.get("sites") or []:
        name, translations = _english_and_others(s.name)
        sites.append({"code": s.code, "name": name, "translations": translations, "kind": s.kind})
    design = f.get("design") or Design(method=Trial.Method.PERMUTED_BLOCKS.value)
    return {
        "key": f.get("key", ""),
        "name": f.get("name", ""),
        "registration_id": f.get("registration_id") or "",
        "target_sample_size": f.get("target_sample_size"),
        "id_prefix": f.get("id_prefix", "P"),
        "language": f.get("language") or "",
        "arms": arms,
        "design": {
            "method": design.method,
            "block_sizes": design.block_sizes,
            "minimization_p": design.minimization_p,
            "baseline_required_before_randomization": (
                design.baseline_required_before_randomization
            ),
        },
        "sites": sites,
        "stratification": factors,
        "criteria": criteria,
        "timepoints": timepoints,
    }


def parse(text, source="<config>"):
    """Validate YAML text; return a normalized dict or raise TrialConfigError with every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrialConfigError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise TrialConfigError(source, ["file: must be a mapping of keys to values"])
    c = _Checker()
    own = {k: v for k, v in raw.items() if k not in _sections}
    parts, c.problems = schema.validate_parts(TrialFile, own)
    for rule in _RULES:
        rule(c, parts)
    config = _normalize(parts)
    config["sections"] = {}
    for key, (check, _, section_schema) in _sections.items():
        value = raw.get(key)
        if section_schema is not None and value is not None:
            try:
                value = section_schema.model_validate(value)
            except ValidationError as error:
                c.problems += schema.problems(error, prefix=(key,), top="")
                continue
        config["sections"][key] = check(c, value, config) if check else value
    if c.problems:
        raise TrialConfigError(source, c.problems)
    return config


def json_schema():
    """The trial file's JSON Schema (its own keys; sections that declare a schema included),
    for an editor's completion and checks. `manage.py trial_schema` prints it."""
    document = TrialFile.model_json_schema()
    document["additionalProperties"] = False
    for key, (_, _, section_schema) in sorted(_sections.items()):
        document["properties"][key] = (
            section_schema.model_json_schema() if section_schema is not None else {}
        )
    return document


def _draw_export_codes(n):
    """Neutral codes A, B, ... assigned to the arms in a random order."""
    codes = list(string.ascii_uppercase[:n])
    secrets.SystemRandom().shuffle(codes)
    return codes


@transaction.atomic
def create_trial(config):
    design = config["design"]
    trial = Trial.objects.create(
        key=config["key"],
        name=config["name"],
        registration_id=config["registration_id"],
        id_prefix=config["id_prefix"],
        language=config.get("language", ""),
        target_sample_size=config["target_sample_size"],
        method=design["method"],
        block_sizes=design["block_sizes"],
        minimization_p=design["minimization_p"],
        baseline_required_before_randomization=design["baseline_required_before_randomization"],
    )
    arms = config["arms"]
    drawn = _draw_export_codes(len(arms))
    for arm, drawn_code in zip(arms, drawn, strict=True):
        Arm.objects.create(
            trial=trial,
            code=arm["code"],
            label=arm["label"],
            ratio=arm["ratio"],
            is_intervention=arm["is_intervention"],
            export_code=arm["export_code"] or drawn_code,
            translations=arm["translations"],
        )
    Site.objects.bulk_create(Site(trial=trial, **site) for site in config["sites"])
    StratificationFactor.objects.bulk_create(
        StratificationFactor(trial=trial, order=i, **factor)
        for i, factor in enumerate(config["stratification"])
    )
    Timepoint.objects.bulk_create(
        Timepoint(trial=trial, order=i, **timepoint)
        for i, timepoint in enumerate(config["timepoints"])
    )
    EligibilityCriterion.objects.bulk_create(
        EligibilityCriterion(trial=trial, order=i, **criterion)
        for i, criterion in enumerate(config["criteria"])
    )
    for key, value in config.get("sections", {}).items():
        _sections[key][1](trial, value)
    return trial


def load_trial(name_or_path):
    """Validate and create a trial from a preset name or a YAML path."""
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrialConfigError(str(name_or_path), [f"cannot read the file: {exc}"]) from None
    return create_trial(parse(text, source=str(path)))
