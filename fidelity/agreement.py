"""Agreement between two raters on an ordinal scale (the IMR Fidelity Scale's 1-5).

Input is a list of pairs (first rater's score, second rater's score), one pair per item rated by
both raw ratings of an assessment. Pure Python, no Django; results are exact Fractions, or None
where the statistic is undefined (no pairs; kappa when both raters used one category only).
"""

from collections import Counter
from fractions import Fraction

CATEGORIES = tuple(range(1, 6))


def exact_agreement(pairs):
    """Share of pairs with the same score."""
    if not pairs:
        return None
    return Fraction(sum(a == b for a, b in pairs), len(pairs))


def adjacent_agreement(pairs):
    """Share of pairs within one point of each other (exact agreement included)."""
    if not pairs:
        return None
    return Fraction(sum(abs(a - b) <= 1 for a, b in pairs), len(pairs))


def weighted_kappa(pairs, weights="linear", categories=CATEGORIES):
    """Cohen's kappa with linear or quadratic disagreement weights.

    kappa_w = 1 - sum(w * observed) / sum(w * expected by chance), with
    w(i, j) = |i - j| / (k - 1), squared for quadratic weights, and the expected proportions the
    product of the two raters' marginal proportions."""
    if weights not in ("linear", "quadratic"):
        raise ValueError("weights must be 'linear' or 'quadratic'")
    if not pairs:
        return None
    power = 1 if weights == "linear" else 2
    span = max(categories) - min(categories)

    def w(i, j):
        return Fraction(abs(i - j), span) ** power

    n = len(pairs)
    observed = sum(w(a, b) for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[i] * second[j] * w(i, j) for i in first for j in second) / (n * n)
    if expected == 0:
        return None  # both raters gave one and the same score throughout: kappa undefined
    return 1 - observed / expected


def summary(pairs):
    """The four statistics the fidelity report shows, with the number of pairs."""
    return {
        "pairs": len(pairs),
        "exact": exact_agreement(pairs),
        "adjacent": adjacent_agreement(pairs),
        "kappa_linear": weighted_kappa(pairs, "linear"),
        "kappa_quadratic": weighted_kappa(pairs, "quadratic"),
    }
