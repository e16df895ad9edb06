"""The trial file's `imr_programme:` section: a trial states its own rules or is not loaded."""

import pytest
import yaml

from fidelity import rules
from fidelity.config import RULES, SECTION
from imrtrial import trialconfig
from imrtrial.models import Trial

pytestmark = pytest.mark.django_db


def third_trial(programme=..., **changes):
    """The Danish preset's file renamed into a third trial, its programme section replaced
    (`...` keeps it; None drops it), with `changes` to that section."""
    data = yaml.safe_load(trialconfig.resolve("danish").read_text())
    data.update(key="third-imr", name="A third IMR trial", registration_id="NCT00000003")
    if programme is None:
        del data[SECTION]
    elif programme is not ...:
        data[SECTION] = programme
    data[SECTION] = {**data[SECTION], **changes} if SECTION in data else None
    if data[SECTION] is None:
        del data[SECTION]
    return yaml.safe_dump(data, allow_unicode=True)


def refusal(text):
    with pytest.raises(trialconfig.TrialConfigError) as raised:
        trialconfig.create_trial(trialconfig.parse(text, source="third.yaml"))
    assert not Trial.objects.filter(key="third-imr").exists()
    return raised.value.problems


def test_a_third_trial_without_rules_is_refused_naming_each_rule():
    (problem,) = refusal(third_trial(programme=None))
    assert problem.startswith("imr_programme: missing")
    for rule in RULES:
        assert rule in problem
    assert "none is taken from another trial" in problem


def test_a_file_leaving_out_some_rules_is_refused_naming_those():
    danish = yaml.safe_load(trialconfig.resolve("danish").read_text())[SECTION]
    partial = {
        k: v for k, v in danish.items() if k not in ("exposed_from_sessions", "fidelity_bands")
    }
    problems = refusal(third_trial(programme=partial))
    assert sorted(p.split(":")[0] for p in problems) == [
        "imr_programme.exposed_from_sessions",
        "imr_programme.fidelity_bands",
    ]
    assert all("missing" in p for p in problems)


@pytest.mark.parametrize(
    ("changes", "where", "says"),
    [
        ({"planned_sessions": 0}, "planned_sessions", "whole number from 1"),
        ({"planned_sessions": True}, "planned_sessions", "whole number"),
        ({"completer_denominator": "attended"}, "completer_denominator", "held or planned"),
        ({"completer_from_share": 1.5}, "completer_from_share", "from 0.001 to 1"),
        ({"completer_from_share": "half"}, "completer_from_share", "number"),
        ({"completer_from_share": 0.3333}, "completer_from_share", "three decimals"),
        ({"exposed_from_sessions": -1}, "exposed_from_sessions", "or null"),
        ({"fidelity_band_decimals": 7}, "fidelity_band_decimals", "from 0 to 3"),
        ({"raters_may_rate_own_site": "no"}, "raters_may_rate_own_site", "true or false"),
        ({"fidelity_bands": []}, "fidelity_bands", "list of bands"),
        (
            {"fidelity_bands": [{"from": 4, "label": "good"}, {"from": 1, "label": "low"}]},
            "fidelity_bands",
            "must ascend",
        ),
        (
            {"fidelity_bands": [{"from": 1, "label": "x"}, {"from": 6, "label": "y"}]},
            "fidelity_bands[1].from",
            "1 to 5",
        ),
        (
            {"fidelity_bands": [{"from": 1, "label": "x"}, {"from": 3, "label": "x"}]},
            "",
            "duplicate",
        ),
        ({"sessions": 12}, "", "sessions"),
    ],
)
def test_a_malformed_rule_is_refused_with_its_place(changes, where, says):
    problems = refusal(third_trial(**changes))
    assert any(
        p.startswith(f"imr_programme.{where}" if where else "imr_programme") and says in p
        for p in problems
    ), problems


def test_a_third_trial_with_its_own_rules_computes_by_them():
    text = third_trial(
        exposed_from_sessions=None,
        completer_from_share=0.667,
        completer_denominator="planned",
        fidelity_band_decimals=1,
        fidelity_bands=[{"from": 1, "label": "low"}, {"from": 3.5, "label": "adequate"}],
    )
    trial = trialconfig.create_trial(trialconfig.parse(text))
    trial = Trial.objects.get(pk=trial.pk)
    own = rules.for_trial(trial)
    assert own.exposed_min_sessions is None and own.scheduled == rules.PLANNED
    assert own.completer(2, 3) is False and own.completer(667, 1000) is True
    assert (
        own.band(rules.score({1: 3, 2: 4, 3: 4, 4: 3, 5: 3, 6: 4, 7: 4, 8: 3, 9: 3, 10: 4}))
        == "adequate"
    )
    assert (
        own.band(rules.Fraction("3.44")) == "low" and own.band(rules.Fraction("3.45")) == "adequate"
    )
    assert trial.imr_rules.history.count() == 1  # audited, like every configuration row


def test_the_shipped_presets_load_with_their_own_rules():
    danish = trialconfig.load_trial("danish")
    dutch = trialconfig.load_trial("dutch")
    assert rules.for_trial(danish).exposed(11) and rules.for_trial(dutch).exposed(11) is None
    assert (danish.imr_rules.planned_sessions, dutch.imr_rules.planned_sessions) == (36, 53)
