"""The trial file's `quality_rules:` section, checked by load_trial with every other setting
(imrtrial.trialconfig.register_section): a malformed rule is named with its place in the file
(`quality_rules[2].check: ...`) and nothing of the trial is loaded.

Each rule: code, name, message, severity (warning | error), forms (the instrument codes it
reads, each due at some timepoint; may be empty for a rule about visit dates only), check
(the expression, quality.rules), and optionally timepoints (where it applies). Its name and
message may not name an arm or the programme: they become the text of data queries that
blinded staff read.
"""

import re

from assessments import registry
from assessments.expressions import ExpressionError, compile_expression
from imrtrial import trialconfig
from imrtrial.blinding_words import PAGE_WORDS, PROGRAMME_WORDS, Word, literal, names_arm

from .models import Severity, TrialRule
from .rules import BUILT_IN, forget_save_rules, trial_resolver

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KEYS = {"code", "name", "message", "severity", "forms", "check", "timepoints"}
RESERVED = {rule.code for rule in BUILT_IN}


def _words(config):
    """The arm-revealing words known before the trial exists: its arms, the page and programme
    words (imrtrial.blinding_words)."""
    words = []
    for arm in config.get("arms", []):
        words += [literal("arm", arm["label"]), literal("arm code", arm["code"])]
    words += [Word("page", re.compile(p)) for p in PAGE_WORDS]
    words += [Word("programme", re.compile(p)) for p in PROGRAMME_WORDS]
    return words


def check(c, value, config):
    if value is None:
        return []
    if not isinstance(value, list):
        c.fail("quality_rules", "must be a list of rules")
        return []
    installed = registry.all_instruments()
    timepoints = [t["code"] for t in config.get("timepoints", []) if t.get("code")]
    scheduled = {code for t in config.get("timepoints", []) for code in t["instruments"]}
    words = _words(config)
    rules = []
    for i, item in enumerate(value):
        where = f"quality_rules[{i}]"
        item = c.mapping(item, where)
        c.unknown_keys(item, KEYS, where)
        code = c.text(item, "code", where, max_length=40)
        if code and not _CODE.match(code):
            c.fail(f"{where}.code", "must start with a letter: lower-case letters, digits, '_'")
        if code in RESERVED:
            c.fail(f"{where}.code", f"{code!r} is a built-in rule's code")
        name = c.text(item, "name", where, max_length=200)
        message = c.text(item, "message", where, max_length=300)
        for key, text in (("name", name), ("message", message)):
            if found := names_arm(text, None, words=words):
                c.fail(f"{where}.{key}", f"names {found}: a blinded reader would learn the arm")
        severity = item.get("severity", Severity.WARNING)
        if severity not in Severity.values:
            c.fail(f"{where}.severity", "must be warning or error")
        forms = item.get("forms", [])
        if not isinstance(forms, list) or not all(isinstance(f, str) for f in forms):
            c.fail(f"{where}.forms", "must be a list of instrument codes")
            forms = []
        for form in forms:
            if form not in scheduled:
                c.fail(f"{where}.forms", f"{form!r} is not due at any of the trial's timepoints")
        where_tp = item.get("timepoints", [])
        if not isinstance(where_tp, list) or any(t not in timepoints for t in where_tp):
            c.fail(f"{where}.timepoints", f"must list timepoint codes ({', '.join(timepoints)})")
            where_tp = []
        text = item.get("check")
        if all(f in installed for f in forms):
            try:
                compile_expression(text, trial_resolver(forms, timepoints, installed))
            except ExpressionError as exc:
                c.fail(f"{where}.check", str(exc))
        rules.append(
            {
                "code": code,
                "name": name,
                "message": message,
                "severity": severity,
                "forms": forms,
                "timepoints": where_tp,
                "expression": text.strip() if isinstance(text, str) else "",
            }
        )
    c.unique([r["code"] for r in rules], "quality_rules", "rule code")
    # The checks inside the trial's forms become query text too: the same refusal.
    for code in sorted(scheduled):
        for rule in getattr(installed.get(code), "rules", ()):
            for text in (rule.name, rule.message):
                if found := names_arm(text, None, words=words):
                    c.fail(f"instrument {code} rule {rule.code}", f"names {found}")
    return rules


def create(trial, rules):
    TrialRule.objects.bulk_create(
        TrialRule(trial=trial, order=i, **rule) for i, rule in enumerate(rules)
    )
    forget_save_rules(trial)


trialconfig.register_section("quality_rules", check, create)
