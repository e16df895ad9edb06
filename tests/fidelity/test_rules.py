"""Each trial's exposure, completion and fidelity-band rules, without the database."""

from fractions import Fraction
from types import SimpleNamespace

import pytest

from fidelity import rules


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
    assert rules.DANISH.band(score) == band


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
    assert rules.DUTCH.band(score) == band


def test_no_score_has_no_band():
    assert rules.DANISH.band(None) is None


def test_danish_exposure_starts_at_eleven_sessions():
    assert rules.DANISH.exposed(10) is False and rules.DANISH.exposed(11) is True
    assert rules.DANISH.completer(40, 40) is None  # the Danish trial has no completer rule


def test_dutch_completer_is_half_of_scheduled_or_more():
    assert rules.DUTCH.completer(26, 52) is True
    assert rules.DUTCH.completer(25, 52) is False
    assert rules.DUTCH.completer(0, 0) is False
    assert rules.DUTCH.exposed(30) is None


def test_fidelity_analyses_take_participants_with_ten_sessions_or_more():
    for trial_rules in (rules.DANISH, rules.DUTCH):
        assert not trial_rules.fidelity_eligible(9) and trial_rules.fidelity_eligible(10)


def test_rules_are_found_by_trial_key_with_the_danish_rules_as_default():
    assert rules.for_trial(SimpleNamespace(key="dutch-imr")) is rules.DUTCH
    assert rules.for_trial(SimpleNamespace(key="danish-imr")) is rules.DANISH
    assert rules.for_trial(SimpleNamespace(key="a-third-trial")) is rules.DEFAULT


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
