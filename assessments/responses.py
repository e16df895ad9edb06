"""The self-report response report: how the participants' own questionnaires came in, per
timepoint and site. Each self-report form due (one visit x one self-report instrument of its
timepoint) falls in one mode: answered by the participant on the assessor's tablet, or from a
link; on paper (typed in twice by staff and reconciled, or still being typed in); typed in by
staff as a single entry; or not completed.

Contract: read only, pooled. Nothing here reads an allocation, an arm or anything that differs
by arm: visits, the kind and mode of form entries, the participant's site and whether their
follow-up has ended (alike for both arms). Which entries are the data of record is
FormEntry.objects.counting(), the one place that rule is written. Four queries, whatever the
trial's size: the timepoints, the visits, the counting entries and the paper entries.
"""

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from imrtrial.models import Participant

from . import registry
from .models import FormEntry, Visit

K, VIA = FormEntry.Kind, FormEntry.EnteredVia

TABLET, LINK, PAPER, STAFF, NOT_COMPLETED = "tablet", "link", "paper", "staff", "not_completed"
MODES = [
    (TABLET, _("Tablet")),
    (LINK, _("Link")),
    (PAPER, _("Paper")),
    (STAFF, _("Typed by staff")),
    (NOT_COMPLETED, _("Not completed")),
]
COMPLETED = (TABLET, LINK, PAPER, STAFF)
SELF_REPORT = "self_report"


def self_report(instruments):
    """The self-report instruments among `instruments` (codes), in their order."""
    return [code for code in instruments if registry.get(code).rater == SELF_REPORT]


def mode_of(counted, on_paper):
    """The mode of one form from its counting entry's (kind, entered_via), or None, and whether
    a first or second paper entry of it exists. The counting entry decides; a form with none
    that is being typed in from paper was answered on paper."""
    if counted:
        kind, via = counted
        if kind == K.FINAL:
            return PAPER
        return {VIA.TABLET: TABLET, VIA.LINK: LINK}.get(via, STAFF)
    return PAPER if on_paper else NOT_COMPLETED


@dataclass
class Tally:
    """The forms due in one cell of the report (a site at a timepoint, or a total), by mode."""

    counts: Counter = field(default_factory=Counter)

    def add(self, other):
        self.counts.update(other.counts)

    @property
    def due(self):
        return sum(self.counts.values())

    @property
    def completed(self):
        return sum(self.counts[mode] for mode in COMPLETED)

    @property
    def rate(self):
        """Completed / due as a Fraction (None when nothing is due)."""
        return Fraction(self.completed, self.due) if self.due else None

    @property
    def percent(self):
        """The rate as a whole percentage, as the other reports write it (a dash when nothing
        is due)."""
        return "—" if self.rate is None else f"{float(self.rate) * 100:.0f}%"

    def in_modes(self):
        return [self.counts[mode] for mode, _label in MODES]


def _is_due(visit, answered, today):
    """Whether a form counts in the report: its visit's window has opened or it was done, or the
    form has an entry (counting or paper). A participant whose follow-up has ended owes no more
    forms: theirs count only where the visit was done or missed, or the form answered."""
    done, missed, window_start, status = visit[3:]
    if answered or done or missed:
        return True
    return window_start <= today and status not in Participant.FOLLOW_UP_ENDED


def response_report(trial, *, sites, today):
    """{"timepoints": [{"code", "label", "instruments", "rows": [(site, Tally)], "total": Tally}],
    "total": Tally} for the timepoints with a self-report instrument and the `sites` given
    (the viewer's, from the gate: no other site is read, nor counted in a total)."""
    timepoints = [(tp, self_report(tp.instruments)) for tp in trial.timepoints.all()]
    timepoints = [(tp, codes) for tp, codes in timepoints if codes]
    codes = {code for _tp, tp_codes in timepoints for code in tp_codes}
    in_scope = Q(participant__trial=trial, participant__site__in=sites)
    entries = FormEntry.objects.filter(in_scope, instrument__in=codes)
    counted = {
        (pid, tp, code): (kind, via)
        for pid, tp, code, kind, via in entries.counting().values_list(
            "participant_id", "timepoint", "instrument", "kind", "entered_via"
        )
    }
    on_paper = set(
        entries.filter(kind__in=(K.FIRST, K.SECOND)).values_list(
            "participant_id", "timepoint", "instrument"
        )
    )
    codes_at = {tp.code: tp_codes for tp, tp_codes in timepoints}
    visits = Visit.objects.filter(in_scope, timepoint__in=[tp for tp, _codes in timepoints])
    cells = {}  # (timepoint code, site id) -> Tally
    for visit in visits.values_list(
        "participant_id",
        "participant__site_id",
        "timepoint__code",
        "completed_on",
        "missed",
        "window_start",
        "participant__status",
    ):
        pid, site_id, tp_code = visit[:3]
        tally = cells.setdefault((tp_code, site_id), Tally())
        for code in codes_at[tp_code]:
            key = (pid, tp_code, code)
            if _is_due(visit, key in counted or key in on_paper, today):
                tally.counts[mode_of(counted.get(key), key in on_paper)] += 1
    return _assemble(timepoints, sites, cells)


def _assemble(timepoints, sites, cells):
    """The report's rows in the schedule's order, a row per site (none left out: a site with
    nothing due shows zeros), a total per timepoint and one over all."""
    total = Tally()
    shown = []
    for tp, codes in timepoints:
        rows = [(site, cells.get((tp.code, site.pk), Tally())) for site in sites]
        tp_total = Tally()
        for _site, tally in rows:
            tp_total.add(tally)
        total.add(tp_total)
        shown.append(
            {
                "code": tp.code,
                "label": tp.display_label,
                "instruments": codes,
                "rows": rows,
                "total": tp_total,
            }
        )
    return {"timepoints": shown, "total": total}
