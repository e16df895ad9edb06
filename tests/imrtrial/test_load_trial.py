"""Trial presets as data, and malformed files rejected whole."""

import pytest
from django.core.management import CommandError, call_command

from imrtrial import trialconfig
from imrtrial.models import Arm, Site, StratificationFactor, Trial

pytestmark = pytest.mark.django_db


def test_danish_preset_loads_1_to_1_blocks_of_6_8_10_stratified_by_diagnosis_and_centre():
    call_command("load_trial", "danish")
    trial = Trial.objects.get(key="danish-imr")
    assert trial.block_sizes == [6, 8, 10]
    assert sorted(trial.arms.values_list("code", "ratio")) == [("imr", 1), ("tau", 1)]
    assert trial.sites.count() == 3
    diagnosis, centre = trial.factors.all()
    assert diagnosis.level_codes() == ["schizophrenia", "bipolar"]
    assert centre.from_site and len(centre.level_codes()) == 3
    assert trial.status == Trial.Status.SETUP


def test_dutch_preset_loads_3_to_2_fixed_blocks_of_5_stratified_by_14_teams():
    call_command("load_trial", "dutch")
    trial = Trial.objects.get(key="dutch-imr")
    assert trial.block_sizes == [5]
    assert dict(trial.arms.values_list("code", "ratio")) == {"imr": 3, "cau": 2}
    assert trial.sites.filter(kind=Site.Kind.TEAM).count() == 14
    (team,) = trial.factors.all()
    assert team.from_site


def test_export_codes_are_drawn_not_fixed_by_the_preset():
    seen = set()
    for _ in range(12):
        config = trialconfig.parse(trialconfig.resolve("danish").read_text())
        config["key"] = f"danish-{len(seen)}-{Trial.objects.count()}"
        trial = trialconfig.create_trial(config)
        codes = dict(trial.arms.values_list("code", "export_code"))
        assert sorted(codes.values()) == ["A", "B"]
        seen.add(codes["imr"])
    assert seen == {"A", "B"}  # 12 draws both landing on one code: odds 1 in 2048


MALFORMED = """
key: Not A Slug
name: ""
arms:
  - {code: imr, label: IMR, ratio: 0}
  - {code: imr, label: Control, ratio: 1, colour: red}
design:
  method: coin_toss
  block_sizes: [6]
sites: []
stratification:
  - {code: diagnosis, label: Diagnosis, levels: [{code: a, label: A}, {code: a, label: B}]}
"""


def test_malformed_file_is_rejected_naming_each_problem_and_nothing_is_loaded(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(MALFORMED)
    with pytest.raises(CommandError) as caught:
        call_command("load_trial", str(path))
    message = str(caught.value)
    for expected in [
        "file.key: must be lower-case",
        "file.name: must be non-empty text",
        "arms[0].ratio: must be a whole number of at least 1",
        "arms[1]: unknown key 'colour'",
        "arms: duplicate arm code 'imr'",
        "design.method: must be one of",
        "sites: must be a non-empty list",
        "stratification[0].levels: duplicate level code 'a'",
    ]:
        assert expected in message
    assert Trial.objects.count() == 0


def test_block_size_not_a_multiple_of_the_ratio_is_rejected(tmp_path):
    text = trialconfig.resolve("dutch").read_text().replace("block_sizes: [5]", "block_sizes: [6]")
    with pytest.raises(trialconfig.TrialConfigError, match=r"6 is not a multiple of .* 5"):
        trialconfig.parse(text)


def test_yaml_python_tags_are_refused_not_executed(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("key: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("load_trial", str(path))


def test_loading_an_existing_trial_again_is_refused():
    call_command("load_trial", "danish")
    with pytest.raises(CommandError, match="already exists"):
        call_command("load_trial", "danish")
    assert Trial.objects.count() == 1


def test_a_failure_while_writing_leaves_nothing_half_loaded(monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(StratificationFactor.objects, "bulk_create", fail)
    with pytest.raises(RuntimeError):
        call_command("load_trial", "danish")
    assert (Trial.objects.count(), Arm.objects.count(), Site.objects.count()) == (0, 0, 0)


def test_missing_file_is_a_clear_error():
    with pytest.raises(CommandError, match="cannot read the file"):
        call_command("load_trial", "/nonexistent/trial.yaml")


def _danish_with(tmp_path, replace, by):
    text = trialconfig.resolve("danish").read_text(encoding="utf-8")
    assert replace in text
    path = tmp_path / "changed.yaml"
    path.write_text(text.replace(replace, by, 1).replace("key: danish-imr", "key: changed"))
    return path


def test_the_presets_state_their_primary_outcomes():
    from assessments import outcomes

    danish = trialconfig.load_trial("danish")
    assert outcomes.primary_measure(danish) == outcomes.Measure("gaf_f", "gaf_f")
    assert [o.timepoint for o in danish.outcomes.filter(rank="primary")] == ["post"]
    dutch = trialconfig.load_trial("dutch")
    assert outcomes.primary_measure(dutch).label == "IMRS mean item score (primary)"
    assert dutch.outcomes.filter(rank="secondary").count() == 11


def test_an_outcome_that_is_not_collected_is_refused_with_its_place(tmp_path):
    path = _danish_with(
        tmp_path,
        "    - {instrument: gaf_f, score: gaf_f, timepoint: post}",
        "    - {instrument: gaf_f, score: mean, timepoint: post}\n"
        "    - {instrument: ismi, score: total, timepoint: post}\n"
        "    - {instrument: gaf_f, score: gaf_f, timepoint: month3}",
    )
    with pytest.raises(trialconfig.TrialConfigError) as error:
        trialconfig.load_trial(path)
    problems = "\n".join(error.value.problems)
    assert "outcomes.primary[0].score: must be one of gaf_f" in problems
    assert "outcomes.primary[1].instrument: 'ismi' is not due at 'post'" in problems
    assert "outcomes.primary[2].timepoint: must be one of baseline, post, followup" in problems
    assert not Trial.objects.filter(key="changed").exists()


def test_outcomes_without_a_primary_one_are_refused(tmp_path):
    path = _danish_with(
        tmp_path, "  primary:\n    - {instrument: gaf_f, score: gaf_f, timepoint: post}\n", ""
    )
    with pytest.raises(trialconfig.TrialConfigError, match="outcomes.primary: a trial that states"):
        trialconfig.load_trial(path)


def test_a_visit_anchored_on_an_arm_only_date_is_refused_with_the_reason(tmp_path):
    path = _danish_with(
        tmp_path,
        "    label: {en: Post-treatment (9 months), da: Efter behandling (9 måneder)}\n",
        "    label: Post-treatment (9 months)\n    anchor: imr_group_end\n",
    )
    with pytest.raises(trialconfig.TrialConfigError) as error:
        trialconfig.load_trial(path)
    (problem,) = [p for p in error.value.problems if "anchor" in p]
    assert problem.startswith("timepoints[1].anchor: 'imr_group_end' happens in one arm only")
    assert "blinded assessors see visit dates" in problem
