"""Trial configuration from YAML: the two shipped presets and any third trial.

Contract: `load_trial(source)` validates the whole file first and raises TrialConfigError naming
every problem it found (with its place in the file); only a valid file is written, in one
transaction, so a trial is never half-loaded.
"""

import re
import secrets
import string
from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction

from .models import Arm, EligibilityCriterion, Site, StratificationFactor, Timepoint, Trial

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_METHODS = {choice.value for choice in Trial.Method}
_SITE_KINDS = {choice.value for choice in Site.Kind}
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
# each with its own check and writer, so this module never imports a later app.
# `check(checker, value, config)` reports problems through checker.fail with their place and
# returns the section's normalized value; `create(trial, value)` writes it inside
# create_trial's transaction.
_sections = {}


def register_section(key, check, create):
    if key in _sections:
        raise ValueError(f"Trial file section {key!r} is registered twice.")
    _sections[key] = (check, create)


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
    def __init__(self):
        self.problems = []

    def fail(self, where, message):
        self.problems.append(f"{where}: {message}")

    def mapping(self, value, where):
        if not isinstance(value, dict):
            self.fail(where, "must be a mapping of keys to values")
            return {}
        return value

    def items(self, value, where):
        if not isinstance(value, list) or not value:
            self.fail(where, "must be a non-empty list")
            return []
        return value

    def text(self, data, key, where, *, required=True, pattern=None, max_length=200):
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
        if pattern and not pattern.match(value):
            self.fail(f"{where}.{key}", "must be lower-case letters, digits, '-' or '_'")
        return value

    def positive_int(self, data, key, where, *, required=True, default=None):
        value = data.get(key, default)
        if value is None:
            if required:
                self.fail(f"{where}.{key}", "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(f"{where}.{key}", f"must be a whole number of at least 1 (got {value!r})")
            return None
        return value

    def unknown_keys(self, data, allowed, where):
        for key in sorted(set(data) - set(allowed), key=str):
            self.fail(where, f"unknown key {key!r}")

    def unique(self, values, where, what):
        seen = set()
        for value in values:
            if value and value in seen:
                self.fail(where, f"duplicate {what} {value!r}")
            seen.add(value)


def parse(text, source="<config>"):
    """Validate YAML text; return a normalized dict or raise TrialConfigError with every problem."""
    c = _Checker()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrialConfigError(source, [f"not valid YAML: {exc}"]) from None
    data = c.mapping(raw, "file")
    c.unknown_keys(
        data,
        {
            "key",
            "name",
            "registration_id",
            "target_sample_size",
            "arms",
            "design",
            "sites",
            "stratification",
            "id_prefix",
            "criteria",
            "timepoints",
            *_sections,
        },
        "file",
    )
    config = {
        "key": c.text(data, "key", "file", pattern=_CODE, max_length=40),
        "name": c.text(data, "name", "file"),
        "registration_id": c.text(data, "registration_id", "file", required=False, max_length=60),
        "target_sample_size": c.positive_int(data, "target_sample_size", "file", required=False),
        "id_prefix": data.get("id_prefix", "P"),
    }
    if not isinstance(config["id_prefix"], str) or not re.fullmatch(
        r"[A-Z]{1,6}", config["id_prefix"]
    ):
        c.fail("file.id_prefix", "must be 1-6 capital letters")

    arms = []
    for i, item in enumerate(c.items(data.get("arms"), "arms")):
        where = f"arms[{i}]"
        item = c.mapping(item, where)
        c.unknown_keys(item, {"code", "label", "ratio", "intervention", "export_code"}, where)
        intervention = item.get("intervention", False)
        if not isinstance(intervention, bool):
            c.fail(f"{where}.intervention", "must be true or false")
        export_code = item.get("export_code")
        if export_code is not None and (
            not isinstance(export_code, str) or not re.fullmatch(r"[A-Z]{1,4}", export_code)
        ):
            c.fail(f"{where}.export_code", "must be 1-4 capital letters")
        arms.append(
            {
                "code": c.text(item, "code", where, pattern=_CODE, max_length=20),
                "label": c.text(item, "label", where, max_length=60),
                "ratio": c.positive_int(item, "ratio", where),
                "is_intervention": intervention is True,
                "export_code": export_code,
            }
        )
    if len(arms) == 1:
        c.fail("arms", "a randomized trial needs at least two arms")
    c.unique([a["code"] for a in arms], "arms", "arm code")
    given_codes = [a["export_code"] for a in arms if a["export_code"]]
    c.unique(given_codes, "arms", "export code")
    if given_codes and len(given_codes) != len(arms):
        c.fail("arms", "give export_code for every arm or for none")
    config["arms"] = arms

    design = c.mapping(data.get("design"), "design")
    c.unknown_keys(
        design,
        {"method", "block_sizes", "minimization_p", "baseline_required_before_randomization"},
        "design",
    )
    method = design.get("method")
    if method not in _METHODS:
        c.fail("design.method", f"must be one of {', '.join(sorted(_METHODS))} (got {method!r})")
    block_sizes = design.get("block_sizes", [])
    ratio_sum = sum(a["ratio"] for a in arms if a["ratio"])
    if method == Trial.Method.PERMUTED_BLOCKS:
        if not isinstance(block_sizes, list) or not block_sizes:
            c.fail("design.block_sizes", "permuted blocks need a non-empty list of block sizes")
            block_sizes = []
        for j, size in enumerate(block_sizes):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                c.fail(f"design.block_sizes[{j}]", f"must be a whole number (got {size!r})")
            elif ratio_sum and size % ratio_sum:
                c.fail(
                    f"design.block_sizes[{j}]",
                    f"{size} is not a multiple of the allocation ratio total {ratio_sum}",
                )
    p = design.get("minimization_p", 0.8)
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.5 <= p <= 1:
        c.fail("design.minimization_p", f"must be a number from 0.5 to 1 (got {p!r})")
    baseline_first = design.get("baseline_required_before_randomization", True)
    if not isinstance(baseline_first, bool):
        c.fail("design.baseline_required_before_randomization", "must be true or false")
    config["design"] = {
        "method": method,
        "block_sizes": block_sizes if isinstance(block_sizes, list) else [],
        "minimization_p": p,
        "baseline_required_before_randomization": baseline_first is not False,
    }

    sites = []
    for i, item in enumerate(c.items(data.get("sites"), "sites")):
        where = f"sites[{i}]"
        item = c.mapping(item, where)
        c.unknown_keys(item, {"code", "name", "kind"}, where)
        kind = item.get("kind", Site.Kind.CENTRE)
        if kind not in _SITE_KINDS:
            c.fail(f"{where}.kind", f"must be one of {', '.join(sorted(_SITE_KINDS))}")
        sites.append(
            {
                "code": c.text(item, "code", where, pattern=_CODE, max_length=20),
                "name": c.text(item, "name", where, max_length=120),
                "kind": kind,
            }
        )
    c.unique([s["code"] for s in sites], "sites", "site code")
    config["sites"] = sites

    factors = []
    for i, item in enumerate(c.items(data.get("stratification"), "stratification")):
        where = f"stratification[{i}]"
        item = c.mapping(item, where)
        c.unknown_keys(item, {"code", "label", "from_site", "levels"}, where)
        from_site = item.get("from_site", False)
        if not isinstance(from_site, bool):
            c.fail(f"{where}.from_site", "must be true or false")
        levels = []
        if from_site is True:
            if "levels" in item:
                c.fail(f"{where}.levels", "a factor taken from the site has the sites as levels")
        else:
            for j, level in enumerate(c.items(item.get("levels"), f"{where}.levels")):
                lwhere = f"{where}.levels[{j}]"
                level = c.mapping(level, lwhere)
                c.unknown_keys(level, {"code", "label"}, lwhere)
                levels.append(
                    {
                        "code": c.text(level, "code", lwhere, pattern=_CODE, max_length=30),
                        "label": c.text(level, "label", lwhere, max_length=80),
                    }
                )
            c.unique([lv["code"] for lv in levels], f"{where}.levels", "level code")
        factors.append(
            {
                "code": c.text(item, "code", where, pattern=_CODE, max_length=30),
                "label": c.text(item, "label", where, max_length=80),
                "from_site": from_site is True,
                "levels": levels,
            }
        )
    c.unique([f["code"] for f in factors], "stratification", "factor code")
    if sum(f["from_site"] for f in factors) > 1:
        c.fail("stratification", "at most one factor can be taken from the site")

    criteria = []
    for kind in (EligibilityCriterion.Kind.INCLUSION, EligibilityCriterion.Kind.EXCLUSION):
        section = c.mapping(data.get("criteria", {}), "criteria").get(kind.value)
        if section is None:
            continue
        for i, item in enumerate(c.items(section, f"criteria.{kind.value}")):
            where = f"criteria.{kind.value}[{i}]"
            item = c.mapping(item, where)
            c.unknown_keys(item, {"code", "text"}, where)
            criteria.append(
                {
                    "kind": kind.value,
                    "code": c.text(item, "code", where, pattern=_CODE, max_length=40),
                    "text": c.text(item, "text", where, max_length=300),
                }
            )
    if not any(cr["kind"] == EligibilityCriterion.Kind.INCLUSION for cr in criteria):
        c.fail("criteria.inclusion", "a trial needs at least one inclusion criterion")
    c.unique([cr["code"] for cr in criteria], "criteria", "criterion code")
    config["criteria"] = criteria

    timepoints = []
    anchors = {a.value for a in Timepoint.Anchor}
    for i, item in enumerate(c.items(data.get("timepoints", []) or [None], "timepoints")):
        if item is None:
            break  # no schedule yet: allowed while a trial is in set-up
        where = f"timepoints[{i}]"
        item = c.mapping(item, where)
        c.unknown_keys(
            item,
            {
                "code",
                "label",
                "anchor",
                "offset_days",
                "window_before_days",
                "window_after_days",
                "instruments",
                "ask_blinding_guess",
            },
            where,
        )
        anchor = item.get("anchor", "randomization")
        if anchor in _ARM_DEPENDENT_ANCHORS:
            c.fail(
                f"{where}.anchor",
                f"{anchor!r} happens in one arm only or on an arm's own timetable; blinded "
                "assessors see visit dates, so a visit anchored on it would tell them the arm. "
                f"Use one of {', '.join(sorted(anchors))}",
            )
        elif anchor not in anchors:
            c.fail(f"{where}.anchor", f"must be one of {', '.join(sorted(anchors))}")
        numbers = {}
        for key, default in (
            ("offset_days", 0),
            ("window_before_days", 30),
            ("window_after_days", 30),
        ):
            value = item.get(key, default)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or (key != "offset_days" and value < 0)
            ):
                c.fail(f"{where}.{key}", f"must be a whole number of days (got {value!r})")
            numbers[key] = value
        instruments = item.get("instruments", [])
        if not isinstance(instruments, list) or not all(isinstance(x, str) for x in instruments):
            c.fail(f"{where}.instruments", "must be a list of instrument codes")
            instruments = []
        for code in instruments:
            if not (Path(settings.INSTRUMENTS_DIR) / f"{code}.yaml").is_file():
                c.fail(f"{where}.instruments", f"no instrument definition {code!r}")
        timepoints.append(
            {
                "code": c.text(item, "code", where, pattern=_CODE, max_length=30),
                "label": c.text(item, "label", where, max_length=80),
                "anchor": item.get("anchor", "randomization"),
                "instruments": instruments,
                "ask_blinding_guess": item.get("ask_blinding_guess", False) is True,
                **numbers,
            }
        )
    c.unique([t["code"] for t in timepoints], "timepoints", "timepoint code")
    config["timepoints"] = timepoints

    if config["key"] and Trial.objects.filter(key=config["key"]).exists():
        c.fail("file.key", f"a trial with key {config['key']!r} already exists")
    config["stratification"] = factors
    config["sections"] = {
        key: check(c, data.get(key), config) for key, (check, _) in _sections.items()
    }
    if c.problems:
        raise TrialConfigError(source, c.problems)
    return config


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
