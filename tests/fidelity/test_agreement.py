"""Agreement statistics on a small example worked by hand."""

from fractions import Fraction

import pytest

from fidelity import agreement

# Five items rated by two raters: (first, second).
PAIRS = [(1, 1), (2, 2), (2, 3), (3, 1), (3, 3)]
# By hand:
#   exact: 3 of 5 identical = 3/5; within one point: all but (3, 1) = 4/5.
#   Marginals: first rater 1:1, 2:2, 3:2; second rater 1:2, 2:1, 3:2; n = 5.
#   Linear disagreement |i-j| (the 1/(k-1) scale cancels in the ratio):
#     observed = (0+0+1+2+0)/5 = 3/5
#     expected = sum r_i c_j |i-j| / 25
#              = [1*(2*0+1*1+2*2) + 2*(2*1+1*0+2*1) + 2*(2*2+1*1+2*0)] / 25 = (5+8+10)/25 = 23/25
#     kappa = 1 - (3/5)/(23/25) = 1 - 15/23 = 8/23
#   Quadratic (i-j)^2:
#     observed = (0+0+1+4+0)/5 = 1
#     expected = [1*(0+1+8) + 2*(2+0+2) + 2*(8+1+0)] / 25 = (9+8+18)/25 = 7/5
#     kappa = 1 - 1/(7/5) = 2/7


def test_exact_and_adjacent_agreement_on_the_hand_worked_example():
    assert agreement.exact_agreement(PAIRS) == Fraction(3, 5)
    assert agreement.adjacent_agreement(PAIRS) == Fraction(4, 5)


def test_linearly_weighted_kappa_on_the_hand_worked_example():
    assert agreement.weighted_kappa(PAIRS, "linear") == Fraction(8, 23)


def test_quadratically_weighted_kappa_on_the_hand_worked_example():
    assert agreement.weighted_kappa(PAIRS, "quadratic") == Fraction(2, 7)


def test_perfect_agreement_gives_kappa_one_and_full_agreement():
    pairs = [(1, 1), (3, 3), (5, 5), (4, 4)]
    assert agreement.weighted_kappa(pairs) == 1
    assert agreement.exact_agreement(pairs) == 1 == agreement.adjacent_agreement(pairs)


def test_kappa_is_undefined_when_both_raters_use_one_score_only():
    assert agreement.weighted_kappa([(5, 5), (5, 5)]) is None


def test_no_pairs_give_no_statistics():
    assert agreement.summary([]) == {
        "pairs": 0,
        "exact": None,
        "adjacent": None,
        "kappa_linear": None,
        "kappa_quadratic": None,
    }


def test_unknown_weights_are_refused():
    with pytest.raises(ValueError):
        agreement.weighted_kappa(PAIRS, "cubic")
