"""Each trial's exposure, completion and fidelity-band rules, without the database."""

from fractions import Fraction

import pytest
import yaml

from fidelity import rules
from fidelity.config import SECTION, check
from imrtrial.trialconfig import _Checker, resolve


def preset_rules(preset):
    """The rules the shipped preset's `imr_programme:` section states."""
    checker = _Checker()
    value = check(checker, yaml.safe_load(resolve(preset).read_text())[SECTION], {})
    assert checker.problems == []
    return rules.from_config(value)


DANISH = preset_rules("danish")
DUTCH = preset_rules("dutch")


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (Fraction(1), "not IMR"),
        (Fraction("3.9"), "not IMR"),
        (Fraction("3.95"), "not IMR"),  # between the published bands: below 4 is not IMR
        (Fraction(4), "good"),
        (Fraction("4.3"), "good"),
        (Fraction("4.35"), "good"),
        (Fraction("4.4"), "high"),
        (Fraction(5), "high"),
    ],
)
def test_danish_bands(score, band):
    assert DANISH.band(score) == band


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (Fraction("2.99"), "low"),
        (Fraction(3), "moderate"),
        (Fraction("3.99"), "moderate"),
        (Fraction(4), "high"),  # the overlap at 4.0 is resolved as the analysis did: >= 4 high
        (Fraction("4.54"), "high"),
    ],
)
def test_dutch_bands(score, band):
    assert DUTCH.band(score) == band


def test_no_score_has_no_band():
    assert DANISH.band(None) is None


def test_danish_exposure_starts_at_eleven_sessions():
    assert DANISH.exposed(10) is False and DANISH.exposed(11) is True
    assert DANISH.completer(40, 40) is None  # the Danish trial has no completer rule


def test_dutch_completer_is_half_of_scheduled_or_more():
    assert DUTCH.completer(26, 52) is True
    assert DUTCH.completer(25, 52) is False
    assert DUTCH.completer(0, 0) is False
    assert DUTCH.exposed(30) is None


def test_fidelity_analyses_take_participants_with_ten_sessions_or_more():
    for trial_rules in (DANISH, DUTCH):
        assert not trial_rules.fidelity_eligible(9) and trial_rules.fidelity_eligible(10)


def test_a_trial_rounding_its_score_before_banding_puts_the_gaps_in_the_nearer_band():
    rounded = rules.from_config(
        {**_danish_config(), "fidelity_band_decimals": 1},
    )
    assert DANISH.band(Fraction("3.95")) == "not IMR"
    assert rounded.band(Fraction("3.95")) == "good"  # 4.0
    assert rounded.band(Fraction("3.94")) == "not IMR"  # 3.9
    assert rounded.band(Fraction("4.35")) == "high"  # 4.4
    assert rounded.band(Fraction(79, 20)) == "good"  # exactly 3.95, half up


def _danish_config():
    checker = _Checker()
    return check(checker, yaml.safe_load(resolve("danish").read_text())[SECTION], {})


def test_the_presets_state_the_published_rules():
    assert (DANISH.scheduled, DANISH.exposed_min_sessions, DANISH.completer_min_share) == (
        rules.HELD,
        11,
        None,
    )
    assert (DUTCH.scheduled, DUTCH.exposed_min_sessions, DUTCH.completer_min_share) == (
        rules.PLANNED,
        None,
        Fraction(1, 2),
    )
    assert DANISH.fidelity_min_sessions == DUTCH.fidelity_min_sessions == 10
    assert (DANISH.planned_sessions, DUTCH.planned_sessions) == (36, 53)


def test_the_score_is_the_mean_of_the_rated_items():
    assert rules.score({1: 4, 2: 5, 3: 4, 4: 4}) == Fraction(17, 4)
    assert rules.score({}) is None


def test_a_midway_rating_covers_items_one_to_ten_only():
    ten = dict.fromkeys(range(1, 11), 4)
    assert rules.check_scores("midway", ten) == []
    problems = rules.check_scores("midway", {**ten, 11: 5})
    assert problems == ["Item(s) 11 are not rated at a midway assessment (items 1-10 only)."]


def test_an_end_rating_needs_all_thirteen_items_each_from_one_to_five():
    scores = dict.fromkeys(range(1, 13), 4)
    scores[3] = 6
    problems = rules.check_scores("end", scores)
    assert "Rate every item; missing: 13." in problems
    assert "Item 3 must be rated from 1 to 5, not 6." in problems
    assert rules.check_scores("end", {**dict.fromkeys(range(1, 14), 3), 2: True}) == [
        "Item 2 must be rated from 1 to 5, not True."
    ]
