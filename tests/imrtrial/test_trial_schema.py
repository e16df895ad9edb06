"""The trial file's and the instrument file's schemas (pydantic, stated once): loose values
refused with their place, content in several languages with English as the fallback, and a JSON
Schema an editor can use."""

import copy
import io
import json

import pytest
import yaml
from django.core.management import call_command
from django.template import Context, Template
from django.utils import translation

from assessments import definitions
from imrtrial import trialconfig
from imrtrial.models import Arm, EligibilityCriterion, StratificationFactor, Timepoint

pytestmark = pytest.mark.django_db


def danish(**changes):
    raw = yaml.safe_load(trialconfig.resolve("danish").read_text())
    for path, value in changes.items():
        node, *keys = path.split("__")
        target = raw
        for key in [node, *keys][:-1]:
            target = target[int(key) if key.isdigit() else key]
        last = [node, *keys][-1]
        target[int(last) if last.isdigit() else last] = value
    return yaml.safe_dump(raw, allow_unicode=True)


def problems_of(text):
    with pytest.raises(trialconfig.TrialConfigError) as refused:
        trialconfig.parse(text)
    return refused.value.problems


def test_the_danish_preset_shows_its_labels_in_danish_and_english_elsewhere():
    trial = trialconfig.load_trial("danish")
    post = Timepoint.objects.get(trial=trial, code="post")
    adult = EligibilityCriterion.objects.get(trial=trial, code="adult")
    tau = Arm.objects.get(trial=trial, code="tau")
    diagnosis = StratificationFactor.objects.get(trial=trial, code="diagnosis")
    assert post.label == "Post-treatment (9 months)"  # the field keeps the English
    with translation.override("da"):
        assert post.display_label == "Efter behandling (9 måneder)"
        assert adult.display_text == "Fyldt 18 år"
        assert tau.display_label == "Standardbehandling"
        assert diagnosis.display_label.startswith("Diagnose")
    with translation.override("nl"):  # no Dutch given: the English
        assert post.display_label == "Post-treatment (9 months)"
    with translation.override("da-dk"):  # a regional variant finds its language
        assert adult.display_text == "Fyldt 18 år"
    assert diagnosis.levels[0]["translations"] == {"da": "Skizofreni (F20.x)"}


def test_the_dutch_preset_shows_its_labels_in_dutch():
    trial = trialconfig.load_trial("dutch")
    with translation.override("nl"):
        assert trial.timepoints.get(code="t2").display_label == "T2 (12 maanden)"
        assert trial.arms.get(code="cau").display_label == "Gebruikelijke zorg"


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"arms__1__label": {"da": "Standard"}}, "arms[1].label: needs the English text (en)"),
        ({"arms__1__label": {"en": "TAU", "de": "X"}}, "arms[1].label: unknown language 'de'"),
        ({"arms__1__label": {"en": "TAU", "da": ""}}, "arms[1].label: da: must be non-empty"),
        ({"target_sample_size": "200"}, "file.target_sample_size: must be a whole number"),
        ({"target_sample_size": True}, "file.target_sample_size: must be a whole number"),
        (
            {"timepoints__1__ask_blinding_guess": "yes"},
            "timepoints[1].ask_blinding_guess: must be true",
        ),
        ({"timepoints__1__offset_days": 27.4}, "timepoints[1].offset_days: must be a whole"),
        ({"design__minimization_p": 1.5}, "design.minimization_p: must be a number from 0.5"),
        ({"arms__0__export_code": "a"}, "arms[0].export_code: must be 1-4 capital letters"),
        ({"id_prefix": "dk"}, "file.id_prefix: must be 1-6 capital letters"),
        ({"sites__0__kind": "hospital"}, "sites[0].kind: must be one of centre or team"),
        ({"criteria__inclusion": []}, "criteria.inclusion: a trial needs at least one"),
    ],
)
def test_a_loose_or_wrong_value_is_refused_with_its_place(change, problem):
    found = problems_of(danish(key="third", **change))
    assert any(p.startswith(problem) for p in found), found


def test_one_bad_item_hides_neither_the_others_nor_the_rules_across_them():
    text = danish(
        key="third",
        arms=[
            {"code": "imr", "label": "IMR", "ratio": 0},
            {"code": "imr", "label": "TAU", "ratio": 1, "colour": "red"},
            {"code": "x", "label": {"da": "y"}, "ratio": 1},
        ],
    )
    found = problems_of(text)
    assert "arms[0].ratio: must be a whole number of at least 1 (got 0)" in found
    assert "arms[1]: unknown key 'colour'" in found
    assert any(p.startswith("arms[2].label: needs the English text") for p in found)
    assert "arms: duplicate arm code 'imr'" in found
    # The sections are still checked, and not for echoes of the arms' problems.
    assert not any(p.startswith(("outcomes", "imr_programme", "quality_rules")) for p in found)


def test_the_json_schema_knows_every_key_the_presets_use():
    out = io.StringIO()
    call_command("trial_schema", stdout=out)
    document = json.loads(out.getvalue())
    assert document["additionalProperties"] is False
    for preset in trialconfig.preset_names():
        raw = yaml.safe_load(trialconfig.resolve(preset).read_text())
        assert set(raw) <= set(document["properties"]), preset
    assert set(document["required"]) >= {"key", "name", "arms", "design", "sites"}
    arm = document["$defs"]["ArmSpec"]
    assert arm["additionalProperties"] is False
    assert arm["properties"]["label"]["oneOf"][1]["required"] == ["en"]


def test_the_instrument_schema_is_printed_too():
    out = io.StringIO()
    call_command("trial_schema", "--instrument", stdout=out)
    document = json.loads(out.getvalue())
    assert {"code", "version", "rater", "sections"} <= set(document["required"])
    assert document["$defs"]["ItemSpec"]["properties"]["type"]["enum"] == list(definitions.TYPES)


TINY = {
    "code": "tiny",
    "name": "Tiny",
    "version": 1,
    "rater": "self_report",
    "sections": [
        {
            "code": "s",
            "label": {"en": "Mood", "da": "Humør", "nl": "Stemming"},
            "items": [
                {
                    "code": "a",
                    "label": {"en": "Felt low", "da": "Følt mig nedtrykt"},
                    "type": "choice",
                    "choices": [
                        {"value": 0, "label": {"en": "No", "da": "Nej", "nl": "Nee"}},
                        {"value": 1, "label": "Yes"},
                    ],
                }
            ],
        }
    ],
}


def test_instrument_labels_in_several_languages_are_english_text_with_translations():
    tiny = definitions.parse(TINY, "tiny.yaml")
    item = tiny.item("a")
    assert item.label == "Felt low"  # exports and codebooks keep reading the English
    page = Template("{% load trialtext %}{{ s|localized }}/{{ i|localized }}/{{ c|localized }}")
    context = Context({"s": tiny.sections[0][1], "i": item.label, "c": item.choices[0][1]})
    with translation.override("da"):
        assert page.render(context) == "Humør/Følt mig nedtrykt/Nej"
    with translation.override("nl"):
        assert page.render(context) == "Stemming/Felt low/Nee"
    with translation.override("en"):
        assert page.render(context) == "Mood/Felt low/No"


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("version",), "1", "version: must be a whole number of at least 1"),
        (("rater",), "nurse", "rater: must be one of assessor_interview"),
        (("sections", 0, "items", 0, "type"), "slider", "sections[0].items[0] (a).type: must be"),
        (("sections", 0, "items", 0, "required"), "no", "(a).required: must be true or false"),
        (("sections", 0, "items", 0, "label"), {"fr": "x"}, "(a).label: unknown language 'fr'"),
    ],
    ids=["version", "rater", "type", "required", "language"],
)
def test_an_instrument_file_is_checked_by_its_schema_with_the_items_code(path, value, expected):
    definition = copy.deepcopy(TINY)
    target = definition
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(definitions.DefinitionError) as refused:
        definitions.parse(definition, "tiny.yaml")
    assert any(expected in p for p in refused.value.problems), refused.value.problems


def test_a_trial_file_may_set_the_sites_language_for_its_staff():
    trial = trialconfig.create_trial(trialconfig.parse(danish(key="dk-da", language="da")))
    assert trial.language == "da"
    found = problems_of(danish(key="dk-de", language="de"))
    assert any(p.startswith("file.language: must be one of en, da or nl") for p in found), found
