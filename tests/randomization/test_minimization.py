"""Tests for Pocock-Simon minimization (randomization.minimization)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from randomization.minimization import MinimizationState, choose_arm

ARMS_1_1 = ("imr", "tau")
ARMS_3_2 = ("imr", "cau")
DIAGNOSES = ("schizophrenia", "bipolar")
CENTRES = ("frederiksberg", "ballerup", "gladsaxe")


def random_levels(rng):
    return {"diagnosis": rng.choice(DIAGNOSES), "centre": rng.choice(CENTRES)}


def level_differences(counts, arms):
    """|n_arm1 - n_arm2| for every factor level."""
    return [
        abs(by_arm.get(arms[0], 0) - by_arm.get(arms[1], 0))
        for by_level in counts.values()
        for by_arm in by_level.values()
    ]


def simulate_simple(seed, n, arms):
    """Simple randomization with the same participant stream, for comparison."""
    rng = random.Random(seed)
    counts = {}
    for _ in range(n):
        levels = random_levels(rng)
        arm = rng.choice(arms)
        for factor, level in levels.items():
            by_arm = counts.setdefault(factor, {}).setdefault(level, Counter())
            by_arm[arm] += 1
    return counts


def simulate_minimization(seed, n, arms, ratio, p):
    rng = random.Random(seed)
    state = MinimizationState(arms, ratio, p_preferred=p)
    for _ in range(n):
        state.assign(random_levels(rng), rng)
    return state


@pytest.mark.parametrize("seed", range(5))
def test_minimization_keeps_every_factor_level_balanced(seed):
    state = simulate_minimization(seed, 1000, ARMS_1_1, (1, 1), 0.8)
    minimized = max(level_differences(state.counts, ARMS_1_1))
    assert minimized <= 4
    assert state.max_level_imbalance() == minimized
    assert sum(state.counts["centre"][c][a] for c in CENTRES for a in ARMS_1_1) == 1000


def test_minimization_is_much_more_balanced_than_simple_randomization():
    minimized = [
        max(
            level_differences(
                simulate_minimization(s, 1000, ARMS_1_1, (1, 1), 0.8).counts, ARMS_1_1
            )
        )
        for s in range(5)
    ]
    simple = [
        max(level_differences(simulate_simple(s, 1000, ARMS_1_1), ARMS_1_1)) for s in range(5)
    ]
    assert sum(minimized) * 4 < sum(simple)


def test_minimization_respects_an_unequal_ratio():
    for seed in range(3):
        state = simulate_minimization(seed, 1000, ARMS_3_2, (3, 2), 0.8)
        totals = Counter()
        for by_arm in state.counts["diagnosis"].values():
            totals.update(by_arm)
        share = totals["imr"] / sum(totals.values())
        assert 0.55 <= share <= 0.65
        # Every level is balanced at 3:2, not 1:1: |2 n_imr - 3 n_cau| stays small.
        assert state.max_level_imbalance() <= 12


def test_deterministic_minimization_ignores_the_rng_when_one_arm_is_best():
    counts = {
        "diagnosis": {"bipolar": {"imr": 5, "tau": 3}},
        "centre": {"ballerup": {"imr": 2, "tau": 2}},
    }
    levels = {"diagnosis": "bipolar", "centre": "ballerup"}
    chosen = {
        choose_arm(ARMS_1_1, (1, 1), levels, counts, 1.0, random.Random(seed)) for seed in range(50)
    }
    assert chosen == {"tau"}


def test_ties_are_broken_at_random():
    levels = {"diagnosis": "bipolar", "centre": "ballerup"}
    chosen = Counter(
        choose_arm(ARMS_1_1, (1, 1), levels, {}, 1.0, random.Random(seed)) for seed in range(400)
    )
    assert set(chosen) == {"imr", "tau"}
    assert 150 < chosen["imr"] < 250


def test_the_non_preferred_arm_is_chosen_with_probability_one_minus_p():
    counts = {"diagnosis": {"bipolar": {"imr": 0, "tau": 4}}}
    levels = {"diagnosis": "bipolar"}
    rng = random.Random(7)
    chosen = Counter(choose_arm(ARMS_1_1, (1, 1), levels, counts, 0.8, rng) for _ in range(4000))
    assert 0.77 < chosen["imr"] / 4000 < 0.83


def test_the_same_rng_seed_reproduces_the_same_allocations():
    first = simulate_minimization(11, 300, ARMS_1_1, (1, 1), 0.8).counts
    second = simulate_minimization(11, 300, ARMS_1_1, (1, 1), 0.8).counts
    assert first == second


def test_ratio_weighting_makes_three_to_two_count_as_balanced():
    # Counts are divided by the ratio share: imr 3, cau 2 is balanced (3/3 = 2/2).  Adding
    # to imr gives 4/3 vs 2/2 (spread 1/3), adding to cau 3/3 vs 3/2 (spread 1/2).
    counts = {"centre": {"ballerup": {"imr": 3, "cau": 2}}}
    levels = {"centre": "ballerup"}
    assert choose_arm(ARMS_3_2, (3, 2), levels, counts, 1.0, random.Random(0)) == "imr"
    counts = {"centre": {"ballerup": {"imr": 3, "cau": 1}}}
    assert choose_arm(ARMS_3_2, (3, 2), levels, counts, 1.0, random.Random(0)) == "cau"


def test_factor_weights_decide_between_conflicting_factors():
    counts = {
        "diagnosis": {"bipolar": {"imr": 4, "tau": 0}},
        "centre": {"ballerup": {"imr": 0, "tau": 2}},
    }
    levels = {"diagnosis": "bipolar", "centre": "ballerup"}
    heavy_centre = {"diagnosis": 1.0, "centre": 5.0}
    assert choose_arm(ARMS_1_1, (1, 1), levels, counts, 1.0, random.Random(0)) == "tau"
    assert (
        choose_arm(ARMS_1_1, (1, 1), levels, counts, 1.0, random.Random(0), heavy_centre) == "imr"
    )


def test_variance_measure_handles_three_arms():
    arms = ("a", "b", "c")
    counts = {"centre": {"x": {"a": 2, "b": 2, "c": 0}}}
    chosen = choose_arm(
        arms, (1, 1, 1), {"centre": "x"}, counts, 1.0, random.Random(1), measure="variance"
    )
    assert chosen == "c"


def test_choose_arm_does_not_modify_the_counts():
    counts = {"diagnosis": {"bipolar": {"imr": 1, "tau": 0}}}
    snapshot = {"diagnosis": {"bipolar": {"imr": 1, "tau": 0}}}
    choose_arm(ARMS_1_1, (1, 1), {"diagnosis": "bipolar"}, counts, 0.8, random.Random(0))
    assert counts == snapshot


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"design_arms": ("imr",), "ratio": (1,)}, "at least 2 arms"),
        ({"design_arms": ("imr", "imr")}, "unique"),
        ({"ratio": (1, 1, 1)}, "ratio has 3 entries but there are 2 arms"),
        ({"ratio": (1, 0)}, "positive integers"),
        ({"p_preferred": 1.5}, r"p_preferred must lie in \[1/2, 1\]"),
        ({"p_preferred": 0.3}, r"p_preferred must lie in \[1/2, 1\]"),
        ({"p_preferred": float("nan")}, "p_preferred"),
        ({"factor_levels": {}}, "non-empty mapping"),
        ({"factor_levels": {"diagnosis": ""}}, "non-empty string"),
        ({"counts": {"diagnosis": {"bipolar": {"placebo": 1}}}}, "unknown arms"),
        ({"counts": {"diagnosis": {"bipolar": {"imr": -1}}}}, "integer >= 0"),
        ({"counts": {"diagnosis": {"bipolar": {"imr": 1.5}}}}, "integer >= 0"),
        ({"weights": {"centre": 1.0}}, "missing"),
        ({"weights": {"diagnosis": -1.0}}, "finite number >= 0"),
        ({"weights": {"diagnosis": 0.0}}, "at least one factor weight"),
        ({"rng": 42}, "random.Random"),
        ({"measure": "entropy"}, "measure must be one of"),
    ],
)
def test_choose_arm_rejects_invalid_input_with_a_clear_message(kwargs, fragment):
    arguments = {
        "design_arms": ARMS_1_1,
        "ratio": (1, 1),
        "factor_levels": {"diagnosis": "bipolar"},
        "counts": {},
        "p_preferred": 0.8,
        "rng": random.Random(0),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        choose_arm(**arguments)


def test_state_rejects_unknown_arms_and_bad_settings():
    state = MinimizationState(ARMS_1_1, (1, 1))
    with pytest.raises(ValueError, match="unknown arm"):
        state.record({"diagnosis": "bipolar"}, "placebo")
    with pytest.raises(ValueError, match="p_preferred"):
        MinimizationState(ARMS_1_1, (1, 1), p_preferred=0.2)
    with pytest.raises(ValueError, match="ratio"):
        MinimizationState(ARMS_1_1, (1,))
