"""How well the assessors' blind holds: their guesses of the arm, pooled or as Bang's index.

At each visit of a timepoint that asks for it (Timepoint.ask_blinding_guess) the blinded
assessor records a guess of the participant's neutral code: "A", "B" or "DK" (don't know).

- guess_rates reads no arm and no allocation: how many guessed A, B or don't know, over every
  participant of the sites in scope. Those shares say nothing of whether a guess was right, so
  they are for blinded readers too. Split by code or arm they would not be: never split them.
- bang_index compares each guess with the participant's own neutral code (read only through
  randomization.export, like the reports) and gives, per arm and timepoint, Bang's blinding
  index. Allocation-revealing: for callers the gate lets see it
  (imrtrial.access.may_see_blinding_index).

Bang's index (Bang, Ni & Davis 2004, Controlled Clinical Trials 25:143-156), for one arm with n
guesses of which c are correct, i incorrect and d "don't know" (c + i + d = n):

    BI = (c - i) / n = (2 * c / (c + i) - 1) * (c + i) / n

from -1 (every guess wrong) through 0 (as good as random guessing, or all don't know) to 1
(every guess right). Its variance is the paper's normal approximation for the 2x3 format, with
p1 = c / n and p2 = i / n:

    Var(BI) = (p1 (1 - p1) + p2 (1 - p2) + 2 p1 p2) / n

and the 95% interval BI +/- 1.96 sqrt(Var), cut to -1..1 (the approximation can reach beyond
with few guesses). Allocations made in error are left out of the index; the pooled rates read
no allocation and so count every guess on record.

No HTTP here: the views ask imrtrial.access who may see what and pass the sites in scope.
"""

from dataclasses import dataclass
from fractions import Fraction
from math import sqrt
from statistics import NormalDist

from assessments.models import Visit
from randomization import export

DONT_KNOW = Visit.Guess.DONT_KNOW
CHOICES = list(Visit.Guess.choices)  # [(value, label)]: A, B, don't know
Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Index:
    """Bang's index of one arm at one timepoint. `index`, `se`, `low` and `high` are None when
    there is no guess to count."""

    n: int
    correct: int
    incorrect: int
    dont_know: int
    index: float | None
    se: float | None
    low: float | None
    high: float | None


def bang(correct, incorrect, dont_know):
    """Bang's blinding index, its standard error and 95% interval, from the counts of one arm."""
    n = correct + incorrect + dont_know
    if n == 0:
        return Index(0, 0, 0, 0, None, None, None, None)
    p1, p2 = correct / n, incorrect / n
    index = p1 - p2
    se = sqrt((p1 * (1 - p1) + p2 * (1 - p2) + 2 * p1 * p2) / n)
    return Index(
        n,
        correct,
        incorrect,
        dont_know,
        index,
        se,
        max(-1.0, index - Z95 * se),
        min(1.0, index + Z95 * se),
    )


def _timepoints(trial, guesses):
    """The timepoints that ask for a guess, and any other with a guess on record (asked before
    the schedule changed), in schedule order."""
    guessed = {timepoint for _, timepoint, _ in guesses}
    return [
        tp
        for tp in trial.timepoints.order_by("order", "pk")
        if tp.ask_blinding_guess or tp.pk in guessed
    ]


def _guesses(trial, sites):
    """[(participant pk, timepoint pk, guess)] of every visit with a guess at `sites`."""
    return list(
        Visit.objects.filter(participant__trial=trial, participant__site__in=sites)
        .exclude(guess="")
        .values_list("participant_id", "timepoint_id", "guess")
    )


def guess_rates(trial, *, sites):
    """Per timepoint: visits with a guess, and how many (and what share) guessed A, B or don't
    know, over every participant of `sites`. Reads no arm and no allocation."""
    guesses = _guesses(trial, sites)
    rows = []
    for tp in _timepoints(trial, guesses):
        counts = dict.fromkeys((value for value, _ in CHOICES), 0)
        for _, timepoint, guess in guesses:
            if timepoint == tp.pk:
                counts[guess] += 1
        n = sum(counts.values())
        rows.append(
            {
                "code": tp.code,
                "label": tp.display_label,
                "n": n,
                "counts": counts,
                "guesses": [
                    {
                        "guess": key,
                        "label": label,
                        "count": counts[key],
                        "share": Fraction(counts[key], n) if n else None,
                    }
                    for key, label in CHOICES
                ],
            }
        )
    return {"choices": CHOICES, "timepoints": rows}


def bang_index(trial, *, sites):
    """Per timepoint and arm: Bang's index of the guesses about participants of `sites` whose
    allocation stands. Allocation-revealing (arm labels, and who was guessed right)."""
    codes = {
        pk: code for pk, (code, in_error) in export.neutral_codes(trial).items() if not in_error
    }
    # The intervention first, then by label: never by export code, which would show the key.
    arms = sorted(export.key(trial), key=lambda arm: (not arm[3], arm[2], arm[1]))
    every = _guesses(trial, sites)
    guesses = [g for g in every if g[0] in codes]
    rows = []
    for tp in _timepoints(trial, every):  # the same timepoints as the pooled rates
        tally = {code: [0, 0, 0] for code, *_ in arms}  # correct, incorrect, don't know
        for pk, timepoint, guess in guesses:
            if timepoint != tp.pk:
                continue
            code = codes[pk]
            tally[code][2 if guess == DONT_KNOW else 0 if guess == code else 1] += 1
        rows.append(
            {
                "code": tp.code,
                "label": tp.display_label,
                "arms": [
                    {"arm": arm, "label": label, "index": bang(*tally[code])}
                    for code, arm, label, _ in arms
                ],
            }
        )
    return {
        "arms": [{"arm": arm, "label": label} for _, arm, label, _ in arms],
        "timepoints": rows,
    }
