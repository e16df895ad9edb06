"""A malformed or hostile rule is refused when its file is loaded, with its place and the
reason, and nothing of the trial is loaded; the Danish preset's rules load."""

import json

import pytest

from assessments.definitions import DefinitionError, parse
from assessments.expressions import ExpressionError, compile_expression
from imrtrial.models import Trial
from imrtrial.trialconfig import TrialConfigError, load_trial, resolve
from quality.models import TrialRule

pytestmark = pytest.mark.django_db

GOOD = "abs(gaf_f.gaf_f - gaf_s.gaf_s) > 30"


def danish_with(tmp_path, old, new, key="danish-copy"):
    text = resolve("danish").read_text().replace("key: danish-imr", f"key: {key}")
    assert old in text
    path = tmp_path / "trial.yaml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    "check, reason",
    [
        ("gaf_f.gaf_f.__class__ > 1", "attribute access is not allowed"),
        ("gaf_f.gaf_f.real > 1", "gaf_f has no such item"),
        ("'x'.join([]) == ''", "attribute access is not allowed"),
        ("gaf_f.gaf_f ** 99999999 > 1", "an exponent must be a number"),
        ("abs(" * 14 + "gaf_f.gaf_f" + ")" * 14 + " > 1", "nested deeper than"),
        ("gaf_f.gaf_f > 1 and " * 40 + "True", "longer than 500 characters"),
        ("open('x') == 1", "unknown function 'open'"),
        ("__import__('os') == 1", "unknown function '__import__'"),
        ("gaf_f.gaf_f[0] > 1", "indexing"),
        ("[x for x in gaf_f.gaf_f]", "comprehension"),
        ("secret > 1", "unknown name 'secret'"),
        ("panss.p1 > 1", "list it in the rule's forms"),
        ("visits.week12.gaf_f.gaf_f > 1", "visits.<timepoint> names one of the trial's"),
        ("gaf_f.gaf_f = 1", "write one expression"),
        ("gaf_f.gaf_f >", "not a valid expression"),
    ],
)
def test_a_hostile_or_malformed_rule_is_refused_at_load_with_its_reason_and_nothing_loaded(
    tmp_path, check, reason
):
    path = danish_with(tmp_path, f'check: "{GOOD}"', f"check: {json.dumps(check)}")
    with pytest.raises(TrialConfigError) as refused:
        load_trial(path)
    assert "quality_rules[0].check" in str(refused.value)
    assert reason in str(refused.value)
    assert not Trial.objects.filter(key="danish-copy").exists()
    assert not TrialRule.objects.exists()


def test_a_rule_whose_message_names_an_arm_is_refused_at_load(tmp_path):
    path = danish_with(tmp_path, 'check both ratings."', 'check both ratings, as in the TAU arm."')
    with pytest.raises(TrialConfigError) as refused:
        load_trial(path)
    assert "quality_rules[0].message: names 'TAU'" in str(refused.value)
    assert not Trial.objects.filter(key="danish-copy").exists()


def test_a_rule_without_its_keys_or_with_a_built_in_code_is_refused_with_its_place(tmp_path):
    path = danish_with(tmp_path, "code: gaf_s_f_apart", "code: outlier\n    colour: red")
    with pytest.raises(TrialConfigError) as refused:
        load_trial(path)
    text = str(refused.value)
    assert "quality_rules[0]: unknown key 'colour'" in text
    assert "quality_rules[0].code: 'outlier' is a built-in rule's code" in text


def test_the_danish_presets_rules_load_as_written(danish):
    assert list(danish.quality_rules.values_list("code", flat=True)) == [
        "gaf_s_f_apart",
        "gaf_f_change",
        "visit_before_randomization",
    ]
    assert danish.quality_rules.get(code="gaf_f_change").timepoints == ["post", "followup"]


def test_a_hostile_check_in_an_instrument_file_is_refused_with_its_place():
    definition = {
        "code": "tiny",
        "name": "Tiny",
        "version": 1,
        "rater": "assessor_interview",
        "sections": [
            {
                "code": "s",
                "label": "S",
                "items": [{"code": "a", "label": "A", "type": "integer", "min": 0, "max": 9}],
            }
        ],
        "scores": [],
        "rules": [{"code": "bad", "name": "Bad", "message": "Bad.", "check": "a.__class__"}],
    }
    with pytest.raises(DefinitionError) as refused:
        parse(definition, "tiny.yaml")
    assert "rules[0] (bad).check: attribute access is not allowed" in str(refused.value)
    definition["rules"][0]["check"] = "a > 8 and scores.total > 1"
    with pytest.raises(DefinitionError, match="unknown name 'scores.total'"):
        parse(definition, "tiny.yaml")
    definition["rules"][0]["check"] = "a > 8"
    (rule,) = parse(definition, "tiny.yaml").rules
    assert rule.check.evaluate({"a": 9}) is True and rule.check.evaluate({"a": None}) is None


def test_an_expression_is_parsed_once_and_evaluated_without_python_eval():
    compiled = compile_expression("x > 1", lambda parts: parts[0])
    assert compiled.reads == ("x",)
    assert compiled.evaluate({"x": 2}) is True and compiled.evaluate({"x": 1}) is False
    with pytest.raises(ExpressionError):
        compile_expression("x if y else z.__dict__", lambda parts: parts[0])
