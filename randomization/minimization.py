"""Pocock-Simon minimization (Pocock & Simon, Biometrics 1975).

Why this module exists
----------------------
Some trials balance several prognostic factors (e.g. diagnosis and centre) at once, where
full stratification would create too many sparse strata.  Minimization allocates each new
participant to the arm that would leave the *marginal* totals of the participant's own
factor levels most balanced, with a random element (``p_preferred < 1``) so that the next
allocation cannot be predicted with certainty.

Algorithm used by :func:`choose_arm`:

1. For each candidate arm ``a`` and each factor ``f``, take the already-allocated counts at
   the new participant's level of ``f`` and add the new participant to ``a``.
2. Divide each arm's count by its ratio share (so that 3:2 is "balanced" at 3:2).  To keep
   the arithmetic exact the counts are multiplied by ``lcm(ratio) / r_arm`` instead, which
   differs only by a constant factor.
3. Measure the spread of these weighted counts with the range (``max - min``, default) or
   the variance, multiply by the factor weight (default 1) and sum over factors.
4. The arm(s) with the smallest total are preferred; ties are broken uniformly at random
   with ``rng``.  With probability ``p_preferred`` the preferred arm is returned, otherwise
   one of the other arms, chosen uniformly.

Only the standard library is used (no Django) so the code can be simulated and tested on
its own; the caller owns the counts and the ``random.Random`` instance.  Nothing here logs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Literal

__all__ = ["Measure", "MinimizationState", "choose_arm"]

Measure = Literal["range", "variance"]
_MEASURES = ("range", "variance")
# Relative tolerance for ties when (float) factor weights are used.
_TIE_TOLERANCE = 1e-9


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _validate_arms(design_arms: Sequence[str], ratio: Sequence[int]) -> None:
    problems: list[str] = []
    if len(design_arms) < 2:
        problems.append(f"at least 2 arms are required, got {len(design_arms)}")
    if any(not isinstance(arm, str) or not arm for arm in design_arms):
        problems.append(f"arm names must be non-empty strings, got {tuple(design_arms)!r}")
    elif len(set(design_arms)) != len(design_arms):
        problems.append(f"arm names must be unique, got {tuple(design_arms)!r}")
    if len(ratio) != len(design_arms):
        problems.append(f"ratio has {len(ratio)} entries but there are {len(design_arms)} arms")
    if any(not _is_positive_int(r) for r in ratio):
        problems.append(f"ratio entries must be positive integers, got {tuple(ratio)!r}")
    if problems:
        raise ValueError("; ".join(problems))


def _validate_p(p_preferred: float, n_arms: int) -> None:
    if isinstance(p_preferred, bool) or not isinstance(p_preferred, (int, float)):
        raise ValueError(f"p_preferred must be a number, got {p_preferred!r}")
    lowest = 1.0 / n_arms
    if not math.isfinite(p_preferred) or not lowest <= p_preferred <= 1.0:
        raise ValueError(
            f"p_preferred must lie in [1/{n_arms}, 1] (below 1/{n_arms} minimization would "
            f"favour imbalance), got {p_preferred!r}"
        )


def _validate_levels(factor_levels: Mapping[str, str]) -> None:
    if not isinstance(factor_levels, Mapping) or not factor_levels:
        raise ValueError("factor_levels must be a non-empty mapping of factor -> level")
    for factor, level in factor_levels.items():
        if not isinstance(factor, str) or not factor:
            raise ValueError(f"factor names must be non-empty strings, got {factor!r}")
        if not isinstance(level, str) or not level:
            raise ValueError(f"level of factor {factor!r} must be a non-empty string")


def _resolve_weights(
    factor_levels: Mapping[str, str], weights: Mapping[str, float] | None
) -> dict[str, float]:
    if weights is None:
        return dict.fromkeys(factor_levels, 1.0)
    missing = sorted(set(factor_levels) - set(weights))
    extra = sorted(set(weights) - set(factor_levels))
    if missing or extra:
        raise ValueError(
            f"weights must name exactly the factors; missing {missing!r}, unknown {extra!r}"
        )
    resolved: dict[str, float] = {}
    for factor, weight in weights.items():
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(
                f"weight of factor {factor!r} must be a finite number >= 0, got {weight!r}"
            )
        resolved[factor] = float(weight)
    if not any(resolved.values()):
        raise ValueError("at least one factor weight must be positive")
    return resolved


def _level_counts(
    counts: Mapping[str, Mapping[str, Mapping[str, int]]],
    factor: str,
    level: str,
    design_arms: Sequence[str],
) -> list[int]:
    by_level = counts.get(factor, {})
    if not isinstance(by_level, Mapping):
        raise ValueError(f"counts[{factor!r}] must be a mapping of level -> arm counts")
    by_arm = by_level.get(level, {})
    if not isinstance(by_arm, Mapping):
        raise ValueError(f"counts[{factor!r}][{level!r}] must be a mapping of arm -> count")
    unknown = sorted(set(by_arm) - set(design_arms))
    if unknown:
        raise ValueError(f"counts[{factor!r}][{level!r}] has unknown arms {unknown!r}")
    values = []
    for arm in design_arms:
        value = by_arm.get(arm, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"counts[{factor!r}][{level!r}][{arm!r}] must be an integer >= 0, got {value!r}"
            )
        values.append(value)
    return values


def _spread(values: Sequence[int], measure: Measure) -> int:
    if measure == "range":
        return max(values) - min(values)
    # k^2 times the population variance; the constant k^2 is the same for every factor.
    k = len(values)
    return k * sum(v * v for v in values) - sum(values) ** 2


def choose_arm(
    design_arms: tuple[str, ...],
    ratio: tuple[int, ...],
    factor_levels: dict[str, str],
    counts: Mapping[str, Mapping[str, Mapping[str, int]]],
    p_preferred: float,
    rng: random.Random,
    weights: Mapping[str, float] | None = None,
    *,
    measure: Measure = "range",
) -> str:
    """Arm for a new participant by Pocock-Simon minimization.

    ``factor_levels`` holds the new participant's level of every factor;
    ``counts[factor][level][arm]`` the participants already allocated (missing entries
    count as 0).  ``p_preferred`` is the probability of taking the imbalance-minimizing
    arm: 1.0 is deterministic apart from random tie-breaking; values below ``1/len(arms)``
    are rejected because they would favour imbalance.  ``rng`` supplies all randomness so
    simulations are reproducible.  ``counts`` is not modified.
    """
    _validate_arms(design_arms, ratio)
    _validate_p(p_preferred, len(design_arms))
    _validate_levels(factor_levels)
    if not isinstance(counts, Mapping):
        raise ValueError("counts must be a mapping factor -> level -> arm -> count")
    if not isinstance(rng, random.Random):
        raise ValueError(f"rng must be a random.Random instance, got {type(rng).__name__}")
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {_MEASURES!r}, got {measure!r}")
    factor_weights = _resolve_weights(factor_levels, weights)

    multiple = math.lcm(*ratio)
    scale = [multiple // r for r in ratio]
    level_counts = {
        factor: _level_counts(counts, factor, level, design_arms)
        for factor, level in factor_levels.items()
    }

    scores: list[float] = []
    for candidate in range(len(design_arms)):
        score = 0.0
        for factor, values in level_counts.items():
            weighted = [
                (value + (arm == candidate)) * scale[arm] for arm, value in enumerate(values)
            ]
            score += factor_weights[factor] * _spread(weighted, measure)
        scores.append(score)

    best = min(scores)
    tolerance = _TIE_TOLERANCE * max(1.0, abs(best))
    tied = [
        arm for arm, score in zip(design_arms, scores, strict=True) if score - best <= tolerance
    ]
    preferred = tied[0] if len(tied) == 1 else rng.choice(tied)
    if p_preferred >= 1.0 or rng.random() < p_preferred:
        return preferred
    return rng.choice([arm for arm in design_arms if arm != preferred])


class MinimizationState:
    """In-memory counts plus :func:`choose_arm`, for simulations and tests.

    The web application keeps its counts in the database; this helper mirrors that
    bookkeeping so the algorithm can be exercised over thousands of participants.
    """

    def __init__(
        self,
        arms: tuple[str, ...],
        ratio: tuple[int, ...],
        p_preferred: float = 0.8,
        weights: Mapping[str, float] | None = None,
        *,
        measure: Measure = "range",
    ) -> None:
        _validate_arms(arms, ratio)
        _validate_p(p_preferred, len(arms))
        if measure not in _MEASURES:
            raise ValueError(f"measure must be one of {_MEASURES!r}, got {measure!r}")
        self.arms = tuple(arms)
        self.ratio = tuple(ratio)
        self.p_preferred = p_preferred
        self.weights = dict(weights) if weights is not None else None
        self.measure: Measure = measure
        self.counts: dict[str, dict[str, dict[str, int]]] = {}

    def choose(self, levels: Mapping[str, str], rng: random.Random) -> str:
        """Arm the next participant with ``levels`` would get, without recording it."""
        return choose_arm(
            self.arms,
            self.ratio,
            dict(levels),
            self.counts,
            self.p_preferred,
            rng,
            self.weights,
            measure=self.measure,
        )

    def record(self, levels: Mapping[str, str], arm: str) -> None:
        """Add one participant with ``levels`` allocated to ``arm`` to the counts."""
        if arm not in self.arms:
            raise ValueError(f"unknown arm {arm!r}; arms are {self.arms!r}")
        _validate_levels(levels)
        for factor, level in levels.items():
            by_arm = self.counts.setdefault(factor, {}).setdefault(
                level, dict.fromkeys(self.arms, 0)
            )
            by_arm[arm] += 1

    def assign(self, levels: Mapping[str, str], rng: random.Random) -> str:
        """Choose an arm for a participant with ``levels`` and record it."""
        arm = self.choose(levels, rng)
        self.record(levels, arm)
        return arm

    def max_level_imbalance(self) -> int:
        """Worst imbalance over all factor levels: ``max_i |R * n_i - r_i * N|``.

        Same measure as ``randomization.sequence.imbalance``; for 1:1 it is ``|n1 - n2|``.
        """
        total_ratio = sum(self.ratio)
        worst = 0
        for by_level in self.counts.values():
            for by_arm in by_level.values():
                n = sum(by_arm.values())
                for arm, share in zip(self.arms, self.ratio, strict=True):
                    worst = max(worst, abs(total_ratio * by_arm[arm] - share * n))
        return worst
