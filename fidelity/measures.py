"""Computed measures of IMR exposure and fidelity: never stored, never typed in.

Every value here reveals the arm. Callers ask imrtrial.access.may_see_allocation first; these
functions only read. Which definitions a trial uses comes from fidelity.rules.for_trial().
"""

from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext

from imrtrial.models import Trial

from . import agreement, rules
from .models import (
    Attendance,
    FidelityAssessment,
    FidelityRating,
    GroupMembership,
    Module,
    Session,
)


@dataclass
class Exposure:
    attended: int  # sessions attended, individual catch-up included
    held: int  # sessions of the participant's group(s) held while they were a member
    planned: int | None  # planned sessions of their (latest) group
    scheduled_basis: str  # rules.HELD or rules.PLANNED: which of the two is "scheduled"
    days_to_first_session: int | None  # from randomization to the first session attended
    modules: list = field(default_factory=list)  # Module values received, curriculum order
    exposed: bool | None = None  # Danish: attended >= 11; None where the trial has no such rule
    completer: bool | None = None  # Dutch: attended >= 50% of scheduled; None likewise
    fidelity_eligible: bool = False  # in fidelity analyses: attended >= 10

    @property
    def scheduled(self):
        return self.held if self.scheduled_basis == rules.HELD else self.planned

    @staticmethod
    def _share(n, d):
        return Fraction(n, d) if d else None

    @property
    def share_of_held(self):
        return self._share(self.attended, self.held)

    @property
    def share_of_planned(self):
        return self._share(self.attended, self.planned)

    @property
    def share(self):
        return self._share(self.attended, self.scheduled)

    def module_labels(self):
        return [Module(code).label for code in self.modules]


def exposures(participants, *, today=None):
    """{participant pk: Exposure} for the participants, in four queries whatever their number."""
    today = today or timezone.localdate()
    participants = list(participants)
    pks = [p.pk for p in participants]
    trials = Trial.objects.select_related("imr_rules").in_bulk({p.trial_id for p in participants})
    rules_of = {pk: rules.for_trial(trial) for pk, trial in trials.items()}
    memberships = list(
        GroupMembership.objects.filter(participant_id__in=pks)
        .select_related("group")
        .order_by("joined_on")
    )
    held_dates = {}
    for group_id, date in Session.objects.filter(
        group_id__in={m.group_id for m in memberships}
    ).values_list("group_id", "date"):
        held_dates.setdefault(group_id, []).append(date)
    attended = {}
    for pk, date, modules in Attendance.objects.filter(
        participant_id__in=pks, status__in=Attendance.COUNTS_AS_ATTENDED
    ).values_list("participant_id", "session__date", "session__modules"):
        attended.setdefault(pk, []).append((date, modules))

    result = {}
    for p in participants:
        trial_rules = rules_of[p.trial_id]
        mine = [m for m in memberships if m.participant_id == p.pk]
        held = sum(
            1
            for m in mine
            for d in held_dates.get(m.group_id, [])
            if m.joined_on <= d <= (m.left_on or today)
        )
        rows = attended.get(p.pk, [])
        n = len(rows)
        first = min((d for d, _ in rows), default=None)
        received = {code for _, modules in rows for code in modules}
        exposure = Exposure(
            attended=n,
            held=held,
            planned=_planned(mine[-1].group, held_dates) if mine else None,
            scheduled_basis=trial_rules.scheduled,
            days_to_first_session=(first - p.randomized_on).days
            if first and p.randomized_on
            else None,
            modules=[code for code in Module.values if code in received],
            exposed=trial_rules.exposed(n),
            fidelity_eligible=trial_rules.fidelity_eligible(n),
        )
        exposure.completer = trial_rules.completer(n, exposure.scheduled)
        result[p.pk] = exposure
    return result


def _planned(group, held_dates):
    """The sessions the group planned; for a group that ended early, those it held."""
    if group.ended_on:
        return len(held_dates.get(group.pk, ()))
    return group.planned_sessions


def exposure(participant, *, today=None):
    return exposures([participant], today=today)[participant.pk]


def session_rows(group):
    """The group's sessions with `members` (attendance rows) and `present` (attended or
    catch-up) counts, oldest first."""
    return (
        Session.objects.filter(group=group)
        .annotate(
            members=Count("attendance"),
            present=Count(
                "attendance", filter=Q(attendance__status__in=Attendance.COUNTS_AS_ATTENDED)
            ),
        )
        .order_by("date")
    )


def module_coverage(group, member_exposures):
    """One row per IMR module: sessions that covered it and how many members received it."""
    sessions = {code: [] for code in Module.values}
    for date, modules in Session.objects.filter(group=group).values_list("date", "modules"):
        for code in modules:
            sessions[code].append(date)
    return [
        {
            "module": Module(code),
            "sessions": len(sessions[code]),
            "first": min(sessions[code], default=None),
            "last": max(sessions[code], default=None),
            "received": sum(code in e.modules for e in member_exposures),
        }
        for code in Module.values
    ]


# --- Fidelity --------------------------------------------------------------------------------


@dataclass
class AssessmentResult:
    assessment: FidelityAssessment
    raw: list  # the raw ratings, first submitted first
    consensus: object  # the consensus FidelityRating, or None
    score: Fraction | None  # mean of the consensus items: the score of record
    band: str | None

    @property
    def both_raw_in(self):
        return len(self.raw) == FidelityRating.RAW_RATINGS

    def pairs(self):
        """(first rater, second rater) score pairs over the items, once both raw are in."""
        if not self.both_raw_in:
            return []
        a, b = (r.item_scores() for r in self.raw)
        return [(a[item], b[item]) for item in self.assessment.items]


def assessment_results(group):
    trial_rules = rules.for_trial(group.trial)
    results = []
    for assessment in group.fidelity_assessments.prefetch_related("ratings").order_by("date"):
        ratings = sorted(assessment.ratings.all(), key=lambda r: r.submitted_at)
        consensus = next((r for r in ratings if r.is_consensus), None)
        score = rules.score(consensus.item_scores()) if consensus else None
        results.append(
            AssessmentResult(
                assessment=assessment,
                raw=[r for r in ratings if not r.is_consensus],
                consensus=consensus,
                score=score,
                band=trial_rules.band(score),
            )
        )
    return results


def group_score(group, results=None):
    """The group's fidelity score of record: the consensus of its end assessment (the mid-way
    one is a process evaluation, DOMAIN.md 5.3), as (score, band); (None, None) until then."""
    results = assessment_results(group) if results is None else results
    for result in results:
        if result.assessment.kind == FidelityAssessment.Kind.END and result.score is not None:
            return result.score, result.band
    return None, None


def visible_ratings(result, user):
    """The ratings of an assessment the user may read: all of them once both raw ratings are
    in; before that only the user's own, so neither rater sees the other's scores first."""
    if result.both_raw_in:
        return result.raw + ([result.consensus] if result.consensus else [])
    return [r for r in result.raw if r.rater_id == user.pk]


def item_table(results):
    """Rows per item: the consensus score at each assessment and their mean (DOMAIN.md 5.4's
    Table 4 layout). Raw scores are left out until both are in (see visible_ratings)."""
    rows = []
    for item, name in rules.ITEMS.items():
        cells, consensus_scores = [], []
        for result in results:
            if item not in result.assessment.items:
                cells.append(None)
                continue
            raw = [r.item_scores()[item] for r in result.raw] if result.both_raw_in else []
            value = result.consensus.item_scores()[item] if result.consensus else None
            if value is not None:
                consensus_scores.append(value)
            cells.append({"raw": raw, "consensus": value})
        mean = Fraction(sum(consensus_scores), len(consensus_scores)) if consensus_scores else None
        rows.append({"item": item, "name": gettext(name), "cells": cells, "mean": mean})
    return rows


def agreement_of(results):
    """Agreement of the two raw ratings, pooled over the assessments where both are in."""
    return agreement.summary([pair for result in results for pair in result.pairs()])
