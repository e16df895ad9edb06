"""The IMR Fidelity Scale items and each trial's rules for exposure, completion and fidelity bands.

Pure Python, no Django import, so the arithmetic is tested on its own.

These rules are trial configuration (DOMAIN.md 10.4 and 10.5): each trial's file states them in
its `imr_programme:` section (fidelity.config checks it; a file without them is refused at load,
never given another trial's rules), and fidelity.models.ImrRules keeps them. Every caller asks
`for_trial(trial)`.

Decisions taken where the sources leave room:
- "Sessions scheduled for the participant" has two definitions, and both are computed:
  HELD = the group's sessions actually held while the participant was a member (Danish closed
  groups: the share of what the group did while they were in it); PLANNED = the group's
  planned_sessions (Dutch: every participant of a rolling group is offered a 12-month course of
  weekly sessions; 42.4 sessions / 80.1% = 53 planned, DOMAIN.md 4.3). `scheduled` names the one
  the trial's completer rule uses.
- Danish exposure is attended >= 11 (0-10 is non-exposed); Dutch completion is attended >= 50%
  of scheduled (the ">= 50%" of the methods, not the ">50%" of the discussion).
- Bands compare the mean with each band's lowest score, unrounded unless the trial rounds it
  first (`band_decimals`). The Danish bands as published (1-3.9, 4-4.3, 4.4-5) leave gaps;
  unrounded, a mean of 3.95 is "not IMR" and 4.35 is "good"; rounded to one decimal, "good" and
  "high".
- A fidelity rater may not rate a group of their own site, unless `raters_may_rate_own_site`
  (the Danish raters were facilitators from the other CMHC). Their own sites are those where
  they hold any role other than fidelity_rater; the fidelity_rater membership (one site or all)
  only says where they may rate. Nor may anyone rate a group they facilitate.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def gettext_noop(text):
    """Marks a string for the catalogues (makemessages) without importing Django here: the
    pages translate the item names where they show them (fidelity.forms, fidelity.measures)."""
    return text


# DOMAIN.md 5.1, thesis / Paper III Table 4 names.
ITEMS = {
    1: gettext_noop("Number of people in a group"),
    2: gettext_noop("Program length"),
    3: gettext_noop("Comprehensiveness of the curriculum"),
    4: gettext_noop("Provision of educational handouts"),
    5: gettext_noop("Involvement of significant others"),
    6: gettext_noop("IMR goal setting"),
    7: gettext_noop("IMR goal follow-up"),
    8: gettext_noop("Motivation-based strategies"),
    9: gettext_noop("Educational techniques"),
    10: gettext_noop("Cognitive-behavioral techniques"),
    11: gettext_noop("Coping-skills training"),
    12: gettext_noop("Relapse prevention"),
    13: gettext_noop("Behavioral tailoring for medication"),
}
# Mid-way ratings cover items 1-10, end ratings all 13 (DOMAIN.md 5.3, 10.4).
ITEMS_BY_KIND = {"midway": tuple(range(1, 11)), "end": tuple(range(1, 14))}
SCORES = range(1, 6)

HELD = "held"
PLANNED = "planned"


@dataclass(frozen=True)
class TrialRules:
    scheduled: str  # HELD or PLANNED: the denominator of the completer share
    exposed_min_sessions: int | None  # "exposed" from this many sessions attended
    completer_min_share: Fraction | None  # "completer" from this share of scheduled sessions
    fidelity_min_sessions: int  # in fidelity analyses from this many sessions attended
    bands: tuple[tuple[Fraction, str], ...]  # (lowest score of the band, label), ascending
    raters_may_rate_own_site: bool = False
    band_decimals: int | None = None  # round the score to this many decimals before banding
    planned_sessions: int | None = None  # a new group's planned sessions, unless it says other

    def exposed(self, attended):
        if self.exposed_min_sessions is None:
            return None
        return attended >= self.exposed_min_sessions

    def completer(self, attended, scheduled):
        if self.completer_min_share is None:
            return None
        if not scheduled:
            return False
        return Fraction(attended, scheduled) >= self.completer_min_share

    def fidelity_eligible(self, attended):
        return attended >= self.fidelity_min_sessions

    def band(self, score):
        """The label of the band the score falls in; None without a score."""
        if score is None:
            return None
        if self.band_decimals is not None:
            exact = Decimal(score.numerator) / Decimal(score.denominator)
            score = Fraction(exact.quantize(Decimal(1).scaleb(-self.band_decimals), ROUND_HALF_UP))
        label = self.bands[0][1]
        for lowest, name in self.bands:
            if score >= lowest:
                label = name
        return label


def from_config(config):
    """TrialRules from the normalized `imr_programme:` section (fidelity.config.check)."""
    share = config["completer_from_share"]
    return TrialRules(
        scheduled=config["completer_denominator"],
        exposed_min_sessions=config["exposed_from_sessions"],
        completer_min_share=None if share is None else Fraction(str(share)),
        fidelity_min_sessions=config["fidelity_analysis_from_sessions"],
        bands=tuple(
            (Fraction(str(band["from"])), band["label"]) for band in config["fidelity_bands"]
        ),
        raters_may_rate_own_site=config["raters_may_rate_own_site"],
        band_decimals=config["fidelity_band_decimals"],
        planned_sessions=config["planned_sessions"],
    )


class NoRules(LookupError):
    """The trial has no IMR programme rules: it was not loaded from a trial file."""


def for_trial(trial):
    """The trial's rules, as its file gave them (`trial.imr_rules`, a fidelity.models.ImrRules
    row, read once per trial object)."""
    # Without a row Django raises RelatedObjectDoesNotExist, which is an AttributeError too.
    stored = getattr(trial, "imr_rules", None)
    if stored is None:
        raise NoRules(f"Trial {trial.key!r} has no IMR programme rules (its file's imr_programme).")
    return stored.as_rules()


def check_scores(kind, scores):
    """Problems with a rating's {item: score} for an assessment of `kind`; [] when valid.

    Every item the kind covers must be rated 1-5, and no other item."""
    items = ITEMS_BY_KIND[kind]
    problems = []
    extra = sorted(set(scores) - set(items))
    if extra:
        problems.append(
            f"Item(s) {', '.join(map(str, extra))} are not rated at a {kind} assessment "
            f"(items {items[0]}-{items[-1]} only)."
        )
    missing = [item for item in items if item not in scores]
    if missing:
        problems.append(f"Rate every item; missing: {', '.join(map(str, missing))}.")
    for item in items:
        value = scores.get(item)
        if value is not None and (type(value) is not int or value not in SCORES):
            problems.append(f"Item {item} must be rated from 1 to 5, not {value!r}.")
    return problems


def score(scores):
    """The fidelity score: the mean of the rated items, as an exact fraction."""
    if not scores:
        return None
    return Fraction(sum(scores.values()), len(scores))
