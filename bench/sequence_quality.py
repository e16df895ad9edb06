"""Quality benchmark for the permuted-block allocation sequences.

Why: before a trial starts, the steering committee wants evidence that the concealed
sequence (randomization.sequence) does what the protocol promises -- exact ratios in every
block, bounded imbalance within each stratum, the advertised block-size mix -- and how
predictable it is compared with simple randomization.

For each preset, N participants (default 10,000) are assigned to strata at random with a
fixed bench seed, so the output is reproducible, and allocated with ``sequence.arm_at``.

Predictability is measured with the Blackwell-Hodges *convergence strategy*: before each
allocation a recruiter who knows the design and the allocations so far in the stratum
guesses the arm that is furthest below its expected share (largest ``r_i * N - R * n_i``).
Ties are scored as fractional credit -- ``1 / (number of tied arms)`` if the true arm is
among them -- which equals the expected score of guessing at random among the tied arms,
without adding simulation noise.  The same is computed for simple (unrestricted)
randomization (``sequence.simple_arm``) over the same participant stream as a baseline.

Usage::

    python bench/sequence_quality.py [--n 10000] [--seed 20240601]

Human-readable lines are printed first; the last line is a single JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from randomization.sequence import (  # noqa: E402
    DANISH_DESIGN,
    DUTCH_DESIGN,
    Design,
    arm_at,
    imbalance,
    listing,
    max_imbalance_bound,
    simple_arm,
)

# A bench-only secret: real trials configure theirs outside the database.
BENCH_SECRET = "sequence-quality-bench"

PRESETS: dict[str, tuple[Design, list[str]]] = {
    "danish": (
        DANISH_DESIGN,
        [
            f"diagnosis={diagnosis}|centre={centre}"
            for diagnosis, centre in itertools.product(
                ("schizophrenia", "bipolar"), ("frederiksberg", "ballerup", "gladsaxe")
            )
        ],
    ),
    "dutch": (DUTCH_DESIGN, [f"team={team:02d}" for team in range(1, 15)]),
}

Allocate = Callable[[Design, str, str, str, int], str]


def convergence_credit(design: Design, counts: Counter[str], actual: str) -> float:
    """Score of the convergence guess: arm(s) furthest below their expected share."""
    total = sum(counts.values())
    big_r = design.ratio_sum
    deficits = {
        arm: share * total - big_r * counts[arm]
        for arm, share in zip(design.arms, design.ratio, strict=True)
    }
    most = max(deficits.values())
    guesses = [arm for arm, deficit in deficits.items() if deficit == most]
    return 1.0 / len(guesses) if actual in guesses else 0.0


def run_allocation(
    design: Design, trial_key: str, stream: list[str], allocate: Allocate
) -> tuple[dict[str, Counter[str]], int, float]:
    """Allocate the stream; return per-stratum counts, worst imbalance and guess rate."""
    counts: dict[str, Counter[str]] = {}
    worst = 0
    credit = 0.0
    for stratum in stream:
        stratum_counts = counts.setdefault(stratum, Counter())
        slot = sum(stratum_counts.values()) + 1
        arm = allocate(design, BENCH_SECRET, trial_key, stratum, slot)
        credit += convergence_credit(design, stratum_counts, arm)
        stratum_counts[arm] += 1
        worst = max(worst, imbalance(stratum_counts, design))
    return counts, worst, credit / len(stream) if stream else 0.0


def block_statistics(
    design: Design, trial_key: str, counts: dict[str, Counter[str]]
) -> tuple[Counter[int], bool, int]:
    """Block-size frequencies (blocks drawn, incl. each stratum's last partial block),
    whether every completed block has the exact ratio, and the number of completed blocks."""
    sizes: Counter[int] = Counter()
    exact = True
    completed = 0
    for stratum, stratum_counts in counts.items():
        slots = listing(design, BENCH_SECRET, trial_key, stratum, sum(stratum_counts.values()))
        for _, group in itertools.groupby(slots, key=lambda slot: slot.block_index):
            block = list(group)
            size = block[0].block_size
            sizes[size] += 1
            if len(block) == size:
                completed += 1
                unit = size // design.ratio_sum
                expected = {
                    arm: share * unit for arm, share in zip(design.arms, design.ratio, strict=True)
                }
                exact = exact and dict(Counter(slot.arm for slot in block)) == expected
    return sizes, exact, completed


def bench_preset(name: str, design: Design, strata: list[str], n: int, seed: int) -> dict:
    rng = random.Random(f"{seed}|{name}")
    stream = [rng.choice(strata) for _ in range(n)]

    counts, worst, guess_rate = run_allocation(design, name, stream, arm_at)
    _, simple_worst, simple_guess_rate = run_allocation(design, name, stream, simple_arm)
    sizes, exact, completed = block_statistics(design, name, counts)
    bound = max_imbalance_bound(design)

    ratio = ":".join(map(str, design.ratio))
    print(f"== {name}: arms {'/'.join(design.arms)} ratio {ratio}, blocks {design.block_sizes}")
    print(f"   {n} participants in {len(strata)} strata")
    first = design.arms[0]
    expected_share = design.ratio[0] / design.ratio_sum
    for stratum in strata:
        stratum_counts = counts.get(stratum, Counter())
        size = sum(stratum_counts.values())
        share = stratum_counts[first] / size if size else float("nan")
        arms = " ".join(f"{arm}={stratum_counts[arm]}" for arm in design.arms)
        print(
            f"   {stratum:<42} n={size:<5} {arms:<22} "
            f"{first} share {share:.3f} (expected {expected_share:.3f})"
        )
    print(
        f"   worst imbalance max_i|R*n_i - r_i*N|: blocked {worst} (bound {bound}), "
        f"simple {simple_worst}"
    )
    freq = ", ".join(f"{size}: {sizes[size]}" for size in sorted(sizes))
    print(f"   block sizes drawn: {freq}; {completed} completed blocks, exact ratio: {exact}")
    print(
        f"   convergence-guess correct rate: blocked {guess_rate:.4f}, "
        f"simple {simple_guess_rate:.4f}"
    )

    return {
        "max_imbalance": worst,
        "max_imbalance_bound": bound,
        "simple_max_imbalance": simple_worst,
        "guess_rate": round(guess_rate, 4),
        "simple_guess_rate": round(simple_guess_rate, 4),
        "block_ratio_exact": exact,
        "block_size_freq": {str(size): sizes[size] for size in sorted(sizes)},
        "n": n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="participants per preset")
    parser.add_argument("--seed", type=int, default=20240601, help="bench seed")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    started = time.perf_counter()
    results = {
        name: bench_preset(name, design, strata, args.n, args.seed)
        for name, (design, strata) in PRESETS.items()
    }
    print(f"elapsed {time.perf_counter() - started:.2f} s")
    print(json.dumps({"presets": results}, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
