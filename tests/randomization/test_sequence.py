"""Tests for the concealed permuted-block sequence (randomization.sequence)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from randomization.sequence import (
    DANISH_DESIGN,
    DUTCH_DESIGN,
    Design,
    DesignError,
    StratumSequence,
    arm_at,
    imbalance,
    listing,
    max_imbalance_bound,
    simple_arm,
    stratum_sequence,
)

DESIGNS = {"danish": DANISH_DESIGN, "dutch": DUTCH_DESIGN}
THREE_ARMS = Design(arms=("a", "b", "c"), ratio=(2, 1, 1), block_sizes=(4, 8))

# Explicit alphabets (with non-ASCII letters) keep example generation cheap.
KEY_CHARS = "abcxyzABC019 _-=:.æøåéß"
secrets = st.text(alphabet=KEY_CHARS + "|", min_size=1, max_size=20)
trial_keys = st.text(alphabet=KEY_CHARS, min_size=1, max_size=12)
stratum_keys = st.text(alphabet=KEY_CHARS + "|", max_size=20)
fast = settings(max_examples=40, deadline=None, database=None)


def blocks_of(slots):
    """Group a listing into blocks (lists of Slot), in order."""
    return [list(group) for _, group in itertools.groupby(slots, key=lambda s: s.block_index)]


def expected_block_counts(design, size):
    unit = size // sum(design.ratio)
    return {arm: share * unit for arm, share in zip(design.arms, design.ratio, strict=True)}


@pytest.mark.parametrize("design", [DANISH_DESIGN, DUTCH_DESIGN, THREE_ARMS])
@fast
@given(secret=secrets, trial_key=trial_keys, stratum_key=stratum_keys)
def test_every_completed_block_has_exact_ratio(design, secret, trial_key, stratum_key):
    slots = listing(design, secret, trial_key, stratum_key, 203)
    blocks = blocks_of(slots)
    completed = [b for b in blocks if len(b) == b[0].block_size]
    assert len(completed) >= len(blocks) - 1
    for block in completed:
        assert [s.position_in_block for s in block] == list(range(len(block)))
        assert dict(Counter(s.arm for s in block)) == expected_block_counts(
            design, block[0].block_size
        )


def test_danish_design_draws_all_three_block_sizes_and_dutch_only_five():
    danish = {s.block_size for s in listing(DANISH_DESIGN, "secret", "danish", "x", 800)}
    dutch = {s.block_size for s in listing(DUTCH_DESIGN, "secret", "dutch", "x", 800)}
    assert danish == {6, 8, 10}
    assert dutch == {5}


def test_block_sizes_are_drawn_roughly_uniformly():
    sizes = Counter(
        block[0].block_size
        for block in blocks_of(listing(DANISH_DESIGN, "secret", "danish", "x", 24_000))
    )
    total = sum(sizes.values())
    for size in (6, 8, 10):
        assert 0.28 < sizes[size] / total < 0.39


@pytest.mark.parametrize("design", [DANISH_DESIGN, DUTCH_DESIGN, THREE_ARMS])
@fast
@given(secret=secrets, stratum_key=stratum_keys)
def test_imbalance_never_exceeds_the_bound_at_any_prefix(design, secret, stratum_key):
    bound = max_imbalance_bound(design)
    counts = dict.fromkeys(design.arms, 0)
    for slot in listing(design, secret, "trial", stratum_key, 300):
        counts[slot.arm] += 1
        assert imbalance(counts, design) <= bound


def test_bound_values_for_the_two_presets():
    assert max_imbalance_bound(DANISH_DESIGN) == 5  # |n_imr - n_tau| <= 5
    assert max_imbalance_bound(DUTCH_DESIGN) == 6  # |2 n_imr - 3 n_cau| <= 6
    assert max_imbalance_bound(Design(("a", "b"), (1, 1), (2, 4))) == 2


def all_block_orders(design, size):
    """Every distinct ordering of one block (multiset permutations, brute force)."""

    def orders(remaining):
        if not any(remaining.values()):
            yield ()
            return
        for arm, left in remaining.items():
            if left:
                rest = {**remaining, arm: left - 1}
                for tail in orders(rest):
                    yield (arm, *tail)

    return list(orders(expected_block_counts(design, size)))


def worst_prefix_imbalance(design, order):
    counts = dict.fromkeys(design.arms, 0)
    worst = 0
    for arm in order:
        counts[arm] += 1
        worst = max(worst, imbalance(counts, design))
    return worst


@pytest.mark.parametrize(
    "design",
    [
        DANISH_DESIGN,
        DUTCH_DESIGN,
        THREE_ARMS,
        Design(("a", "b"), (1, 2), (3, 6)),
        Design(("a", "b", "c"), (1, 1, 1), (3, 6, 9)),
    ],
)
def test_bound_equals_the_brute_force_worst_case_over_all_block_orders(design):
    worst = 0
    for size in design.block_sizes:
        orders = all_block_orders(design, size)
        assert len(orders) == len(set(orders))
        worst = max(worst, max(worst_prefix_imbalance(design, order) for order in orders))
    assert worst == max_imbalance_bound(design)


def test_bound_is_reached_by_generated_sequences():
    for design in (DANISH_DESIGN, DUTCH_DESIGN):
        counts = dict.fromkeys(design.arms, 0)
        worst = 0
        for arm in (s.arm for s in listing(design, "secret", "trial", "x", 30_000)):
            counts[arm] += 1
            worst = max(worst, imbalance(counts, design))
        assert worst == max_imbalance_bound(design)


def test_imbalance_measure_examples():
    assert imbalance({"imr": 7, "tau": 3}, DANISH_DESIGN) == 4
    assert imbalance({"imr": 3, "cau": 2}, DUTCH_DESIGN) == 0
    assert imbalance({"imr": 3}, DUTCH_DESIGN) == 6
    assert imbalance({"cau": 2}, DUTCH_DESIGN) == 6
    assert imbalance({}, DUTCH_DESIGN) == 0
    with pytest.raises(ValueError, match="not in the design"):
        imbalance({"placebo": 1}, DUTCH_DESIGN)


@fast
@given(secret=secrets, trial_key=trial_keys, stratum_key=stratum_keys)
def test_same_secret_and_keys_give_the_identical_sequence(secret, trial_key, stratum_key):
    first = listing(DANISH_DESIGN, secret, trial_key, stratum_key, 200)
    second = listing(DANISH_DESIGN, secret, trial_key, stratum_key, 200)
    fresh = StratumSequence(DANISH_DESIGN, secret, trial_key, stratum_key)
    assert first == second
    assert [s.arm for s in first] == [fresh.arm_at(n) for n in range(1, 201)]


@fast
@given(
    secret=secrets,
    other_secret=secrets,
    stratum_key=stratum_keys,
    other_stratum=stratum_keys,
)
def test_a_different_secret_or_stratum_gives_a_different_sequence(
    secret, other_secret, stratum_key, other_stratum
):
    def arms(sec, stratum, trial="trial"):
        return [s.arm for s in listing(DANISH_DESIGN, sec, trial, stratum, 200)]

    base = arms(secret, stratum_key)
    if other_secret != secret:
        assert arms(other_secret, stratum_key) != base
    if other_stratum != stratum_key:
        assert arms(secret, other_stratum) != base
    assert arms(secret, stratum_key, trial="other-trial") != base


def test_sequence_follows_the_documented_hmac_derivation():
    # An independent re-implementation of the documented recipe, so that any change to
    # the derivation (which would break the statistician's verification) fails here.
    def reference(design, secret, trial_key, stratum_key, n):
        arms, block_index = [], 0
        while len(arms) < n:
            message = f"{trial_key}|{stratum_key}|{block_index}".encode()
            digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
            rng = random.Random(int.from_bytes(digest, "big"))
            size = rng.choice(sorted(design.block_sizes))
            block = []
            for arm, share in zip(design.arms, design.ratio, strict=True):
                block += [arm] * (share * size // sum(design.ratio))
            rng.shuffle(block)
            arms += block
            block_index += 1
        return arms[:n]

    for design in (DANISH_DESIGN, DUTCH_DESIGN):
        got = [s.arm for s in listing(design, "s3cret", "trial", "centre=a|dx=b", 157)]
        assert got == reference(design, "s3cret", "trial", "centre=a|dx=b", 157)


def test_pinned_sequence_does_not_change_between_versions():
    # Golden values: if this fails, already-made allocations could no longer be verified.
    slots = listing(DANISH_DESIGN, "pinned", "danish", "s1", 30)
    arms = "".join(s.arm[0] for s in slots)
    sizes = [block[0].block_size for block in blocks_of(slots)]
    assert arms == "tiititiitititittitiittittttiti"
    assert sizes == [6, 10, 8, 8]


def test_block_size_order_in_the_design_does_not_change_the_sequence():
    reordered = Design(arms=("imr", "tau"), ratio=(1, 1), block_sizes=(10, 6, 8))
    assert listing(reordered, "k", "t", "s", 100) == listing(DANISH_DESIGN, "k", "t", "s", 100)


@pytest.mark.parametrize("design", [DANISH_DESIGN, DUTCH_DESIGN])
def test_arm_at_agrees_with_listing(design):
    stratum_sequence.cache_clear()
    slots = listing(design, "secret", "trial", "stratum", 500)
    assert [arm_at(design, "secret", "trial", "stratum", s.slot) for s in slots] == [
        s.arm for s in slots
    ]
    # Random access after the fact (e.g. slot 1 again) still agrees.
    assert arm_at(design, "secret", "trial", "stratum", 1) == slots[0].arm
    assert [s.slot for s in slots] == list(range(1, 501))


def test_sequential_arm_at_generates_only_the_blocks_needed():
    stratum_sequence.cache_clear()
    n = 20_000
    for slot in range(1, n + 1):
        arm_at(DANISH_DESIGN, "secret", "trial", "big-stratum", slot)
    sequence = stratum_sequence(DANISH_DESIGN, "secret", "trial", "big-stratum")
    needed = listing(DANISH_DESIGN, "secret", "trial", "big-stratum", n)[-1].block_index + 1
    assert sequence.blocks_generated == needed
    # Memoized: re-reading earlier slots generates nothing new, and the cache returns
    # the very same instance.
    arm_at(DANISH_DESIGN, "secret", "trial", "big-stratum", 1)
    arm_at(DANISH_DESIGN, "secret", "trial", "big-stratum", n)
    assert sequence.blocks_generated == needed
    assert stratum_sequence(DANISH_DESIGN, "secret", "trial", "big-stratum") is sequence
    info = stratum_sequence.cache_info()
    assert info.misses == 1 and info.hits >= n


def test_a_stratum_sequence_generates_blocks_lazily():
    sequence = StratumSequence(DUTCH_DESIGN, "secret", "trial", "s")
    assert sequence.blocks_generated == 0
    sequence.arm_at(5)
    assert sequence.blocks_generated == 1
    sequence.arm_at(6)
    assert sequence.blocks_generated == 2
    assert "secret" not in repr(sequence)


def test_design_validation_names_every_problem():
    with pytest.raises(DesignError) as bad_sizes:
        Design(arms=("imr", "tau"), ratio=(1, 1), block_sizes=(6, 7))
    assert bad_sizes.value.problems == (
        "block size 7 is not a multiple of the ratio sum 2 (ratio 1:1)",
    )

    with pytest.raises(DesignError, match="block size 6 is not a multiple of the ratio sum 5"):
        Design(arms=("imr", "cau"), ratio=(3, 2), block_sizes=(6,))

    with pytest.raises(DesignError) as many:
        Design(arms=("imr", "imr", "tau"), ratio=(1, 1), block_sizes=(4, 0))
    message = str(many.value)
    assert len(many.value.problems) == 3
    assert "unique, duplicated: 'imr'" in message
    assert "same length, got 3 arms and 2 ratio entries" in message
    assert "block size 0 is not a positive integer" in message
    assert isinstance(many.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"arms": ("imr",), "ratio": (1,), "block_sizes": (2,)}, "at least 2 arms"),
        ({"arms": ("imr", ""), "ratio": (1, 1), "block_sizes": (2,)}, "non-empty strings"),
        ({"arms": ("a", "b"), "ratio": (1, 0), "block_sizes": (2,)}, "positive integers"),
        ({"arms": ("a", "b"), "ratio": (1, True), "block_sizes": (2,)}, "positive integers"),
        ({"arms": ("a", "b"), "ratio": (1, 1), "block_sizes": ()}, "at least one block size"),
        (
            {"arms": ("a", "b"), "ratio": (1, 1), "block_sizes": (4, 4)},
            "block sizes must be unique",
        ),
        ({"arms": ("a", "b"), "ratio": (1, 1), "block_sizes": (-2,)}, "not a positive integer"),
    ],
)
def test_design_validation_rejects_each_kind_of_mistake(kwargs, fragment):
    with pytest.raises(DesignError, match=fragment):
        Design(**kwargs)


def test_designs_accept_lists_and_are_hashable():
    design = Design(arms=["imr", "tau"], ratio=[1, 1], block_sizes=[6, 8, 10])
    assert design == DANISH_DESIGN
    assert hash(design) == hash(DANISH_DESIGN)


@pytest.mark.parametrize(
    ("secret", "trial_key", "slot", "error"),
    [
        ("", "trial", 1, ValueError),
        ("s", "", 1, ValueError),
        ("s", "a|b", 1, ValueError),
        ("s", "trial", 0, ValueError),
        ("s", "trial", -3, ValueError),
        (None, "trial", 1, TypeError),
    ],
)
def test_arm_at_rejects_bad_keys_and_slots(secret, trial_key, slot, error):
    with pytest.raises(error):
        arm_at(DANISH_DESIGN, secret, trial_key, "stratum", slot)


def test_simple_randomization_is_deterministic_and_follows_the_ratio():
    arms = [simple_arm(DUTCH_DESIGN, "secret", "trial", "s", n) for n in range(1, 5001)]
    again = [simple_arm(DUTCH_DESIGN, "secret", "trial", "s", n) for n in range(1, 5001)]
    assert arms == again
    share = arms.count("imr") / len(arms)
    assert 0.57 < share < 0.63
    blocked = [s.arm for s in listing(DUTCH_DESIGN, "secret", "trial", "s", 5000)]
    assert arms != blocked
