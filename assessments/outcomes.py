"""The trial's outcomes: the file's `outcomes:` section (imrtrial.trialconfig.register_section),
checked with every other setting, and read by the codebook, the ODM metadata and the reports.

    outcomes:
      primary:
        - {instrument: gaf_f, score: gaf_f, timepoint: post}
      secondary:
        - {instrument: panss, score: total, timepoint: post}
      exploratory: [...]

Each outcome is a score of an instrument due at that timepoint. The section is optional; a
trial without a primary outcome has its CONSORT "analysed" counted as "any complete form at the
timepoint", and its pages say so.
"""

from dataclasses import dataclass

from imrtrial import trialconfig

from . import registry
from .models import Outcome

KEYS = {"instrument", "score", "timepoint"}


@dataclass(frozen=True)
class Measure:
    """A score of an instrument (what "analysed for the primary outcome" reads)."""

    instrument: str
    score: str

    @property
    def label(self):
        try:
            found = registry.get(self.instrument)
        except KeyError:
            return f"{self.instrument}.{self.score}"
        names = {s.code: s.label for s in found.scores}
        return names.get(self.score, f"{found.name}: {self.score}")


def check(c, value, config):
    if value is None:
        return []
    value = c.mapping(value, "outcomes")
    c.unknown_keys(value, set(Outcome.Rank.values), "outcomes")
    installed = registry.all_instruments()
    due = {t["code"]: set(t["instruments"]) for t in config.get("timepoints", []) if t.get("code")}
    outcomes = []
    for rank in Outcome.Rank.values:
        for i, item in enumerate(value.get(rank) or []):
            where = f"outcomes.{rank}[{i}]"
            item = c.mapping(item, where)
            c.unknown_keys(item, KEYS, where)
            instrument = c.text(item, "instrument", where, max_length=40)
            score = c.text(item, "score", where, max_length=40)
            timepoint = c.text(item, "timepoint", where, max_length=30)
            if timepoint and timepoint not in due:
                c.fail(f"{where}.timepoint", f"must be one of {', '.join(due)}")
            elif instrument and instrument not in due.get(timepoint, ()):
                c.fail(f"{where}.instrument", f"{instrument!r} is not due at {timepoint!r}")
            elif instrument in installed:
                scores = [s.code for s in installed[instrument].scores]
                if score and score not in scores:
                    c.fail(f"{where}.score", f"must be one of {', '.join(scores) or '(none)'}")
            outcomes.append(
                {"rank": rank, "instrument": instrument, "score": score, "timepoint": timepoint}
            )
    if value and not any(o["rank"] == Outcome.Rank.PRIMARY for o in outcomes):
        c.fail("outcomes.primary", "a trial that states its outcomes states its primary one")
    c.unique(
        [f"{o['instrument']}.{o['score']} at {o['timepoint']}" for o in outcomes],
        "outcomes",
        "outcome",
    )
    return outcomes


def create(trial, outcomes):
    Outcome.objects.bulk_create(
        Outcome(trial=trial, order=i, **outcome) for i, outcome in enumerate(outcomes)
    )


trialconfig.register_section("outcomes", check, create)


def of(trial):
    """The trial's outcomes, primary first, in the file's order."""
    order = {rank: i for i, rank in enumerate(Outcome.Rank.values)}
    return sorted(trial.outcomes.all(), key=lambda o: (order[o.rank], o.order))


def primary_measure(trial):
    """The Measure of the trial's primary outcome (its first, if the file lists several
    timepoints of one score), or None for a trial that states none."""
    first = trial.outcomes.filter(rank=Outcome.Rank.PRIMARY).order_by("order").first()
    return Measure(first.instrument, first.score) if first else None


def ranks_of(trial):
    """{(instrument, score): [(rank label, timepoint code)]}: what the codebook and the ODM
    metadata say of each score."""
    found = {}
    for outcome in of(trial):
        found.setdefault((outcome.instrument, outcome.score), []).append(
            (outcome.get_rank_display(), outcome.timepoint)
        )
    return found
