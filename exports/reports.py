"""Trial reports as plain dicts: the CONSORT flow, recruitment against the target, follow-up
completion, data completeness, and fidelity per IMR group.

No HTTP here. The views ask imrtrial.access who may see what and pass the sites in scope; these
functions only count, in a fixed number of bulk queries. Allocation facts come from
randomization.export (this app never reads allocation rows itself).

Blinding is built in, not filtered out afterwards:
- consort(view=POOLED) puts every randomized participant in one column and reads no arm at all;
  view=CODES reads only the neutral code (A/B) and the in-error flag. Neither reads arms, arm
  labels, IMR attendance or level-1 withdrawals (stopping the intervention happens in one arm
  only), nor any reason typed as free text (whoever typed it may have named the arm).
- view=ARMS adds arm labels, receipt of the intervention (attended at least one IMR session),
  level-1 withdrawals and the typed reasons: for callers the gate lets see allocation data.
- recruitment, follow_up and completeness read no arm.
- fidelity reads IMR groups: for callers the gate lets see allocation data.

Definitions (also printed on the pages):
- A participant's allocation "stands" unless it was flagged as made in error; only those are
  followed up, counted as due, or analysed.
- A form "counts" when it is a single entry or the reconciled entry of a double entry, and is
  complete, verified or locked (FormEntry.objects.counting()).
- "Analysed at a timepoint": the allocation stands, at least one counting form is on record at
  that timepoint, and consent for data use has not been withdrawn (level 3 erases the data).
- One outcome per participant and timepoint: a visit done stands; then a visit missed before any
  withdrawal (its window closed before the withdrawal date); then the withdrawal (level 2 or 3);
  then a visit missed, overdue, or not yet due.
"""

import re
from collections import Counter
from fractions import Fraction

from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assessments import outcomes, registry
from assessments.models import Death, ExclusionAfterRandomization, FormEntry, Visit
from assessments.services import visit_dates
from fidelity import measures, rules
from fidelity.models import ImrGroup
from imrtrial.models import Participant
from randomization import export
from randomization.models import Withdrawal

POOLED, CODES, ARMS = "pooled", "codes", "arms"
VIEWS = (POOLED, CODES, ARMS)

# Visit outcomes: one per participant (allocation standing) and timepoint.
DONE, OUT_OF_WINDOW, MISSED = "done", "out_of_window", "missed"
OVERDUE, NOT_YET_DUE, WITHDRAWN = "overdue", "not_yet_due", "withdrawn"
FOLLOW_UP_CATEGORIES = [
    (DONE, gettext_lazy("Done")),
    (OUT_OF_WINDOW, gettext_lazy("Done out of window")),
    (MISSED, gettext_lazy("Missed")),
    (OVERDUE, gettext_lazy("Overdue")),
    (NOT_YET_DUE, gettext_lazy("Not yet due")),
    (WITHDRAWN, gettext_lazy("Withdrawn from follow-up")),
]
# A form is due once its visit is done, missed or past its window.
DUE_OUTCOMES = (DONE, OUT_OF_WINDOW, MISSED, OVERDUE)

# CONSORT outcomes per timepoint (MISSED, OVERDUE and NOT_YET_DUE as above).
ANALYSED, NO_DATA, NO_PRIMARY = "analysed", "no_data", "no_primary"
WITHDREW_FOLLOW_UP, WITHDREW_CONSENT = "withdrew_follow_up", "withdrew_consent"
DIED = "died"
CONSORT_OUTCOMES = (ANALYSED, NO_PRIMARY, DIED, MISSED, WITHDREW_FOLLOW_UP, WITHDREW_CONSENT)
CONSORT_OUTCOMES += (NO_DATA, OVERDUE, NOT_YET_DUE)
# Excluded after randomization, by category: the recorded exclusions' and allocations flagged
# as made in error. Categories alike for both arms; typed reasons for unblinded views only.
EXCLUSION_CATEGORIES = [
    *ExclusionAfterRandomization.Category.choices,
    ("in_error", gettext_lazy("Allocated in error")),
]

ITT_DEFINITION = gettext_lazy(
    "Intention to treat: everyone randomized, less those excluded after randomization (by the "
    "categories shown, including allocations made in error)."
)
ANALYSED_DEFINITION = gettext_lazy(
    "Analysed at a timepoint (complete cases): in the intention-to-treat population, with the "
    "primary outcome's score on a complete, verified or locked form (single entry, or the "
    "reconciled entry of a double entry) at that timepoint, and consent for data use not "
    "withdrawn. Where the primary outcome's form is not due at a timepoint, or the trial states "
    "no primary outcome, any such form at the timepoint counts."
)
OUTCOME_RULE = gettext_lazy(
    "Each participant counts once per timepoint: data on record first; then death; then a "
    "visit missed before any withdrawal, by its reason; then a withdrawal from follow-up; then "
    "overdue or not yet due."
)


# --- Shared reading ---------------------------------------------------------------------------


def _allocations(trial, sites):
    """{participant pk: (neutral code, in_error)} for the randomized participants of `sites`."""
    pks = set(Participant.objects.filter(trial=trial, site__in=sites).values_list("pk", flat=True))
    return {pk: value for pk, value in export.neutral_codes(trial).items() if pk in pks}


def _standing(allocations):
    return {pk for pk, (_, in_error) in allocations.items() if not in_error}


def _follow_up_withdrawals(trial, pks):
    """{pk: (highest level, date of leaving follow-up)} for withdrawals at level 2 or 3.

    Level 1 (stopping the intervention) is dropped here, before anything can count it: it
    happens in the intervention arm only."""
    found = {}
    for pk, level, on in (
        Withdrawal.objects.follow_up()
        .filter(participant__trial=trial)
        .values_list("participant_id", "level", "withdrawn_on")
    ):
        if pk in pks:
            highest, first = found.get(pk, (level, on))
            found[pk] = (max(highest, level), min(first, on))
    return found


def _visits(trial, pks, timepoints):
    """{(participant pk, timepoint pk): Visit}. A visit the scheduler has not made yet (it runs
    when pages are opened) is made up, unsaved, from the schedule, so a report does not depend
    on when the scheduler last ran."""
    found = {
        (v.participant_id, v.timepoint_id): v
        for v in Visit.objects.filter(participant_id__in=pks).only(
            "participant_id",
            "timepoint_id",
            "window_start",
            "window_end",
            "completed_on",
            "missed",
            "missed_because",
            "deviation",
        )
    }
    for participant in Participant.objects.filter(pk__in=pks).only(
        "pk", "created_at", "randomized_on", "baseline_completed_on"
    ):
        for timepoint in timepoints:
            if (participant.pk, timepoint.pk) in found:
                continue
            dates = visit_dates(timepoint, participant)
            if dates:
                found[participant.pk, timepoint.pk] = Visit(
                    participant_id=participant.pk,
                    timepoint_id=timepoint.pk,
                    target_date=dates[0],
                    window_start=dates[1],
                    window_end=dates[2],
                )
    return found


def _counting_entries(pks):
    """{(participant pk, timepoint code, instrument code)} of the forms that count."""
    return set(
        FormEntry.objects.counting()
        .filter(participant_id__in=pks)
        .values_list("participant_id", "timepoint", "instrument")
    )


def visit_outcome(visit, withdrawal, today):
    """The outcome of one participant's visit at one timepoint (one of FOLLOW_UP_CATEGORIES).

    `withdrawal` is (level, date left follow-up) or None; a visit that cannot be dated yet (no
    anchor date) is None and counts as not yet due."""
    if visit is not None and visit.completed_on:
        return OUT_OF_WINDOW if visit.deviation else DONE
    # Missed before the withdrawal: its window had closed by the date the participant left.
    if (
        visit is not None
        and visit.missed
        and (withdrawal is None or visit.window_end < withdrawal[1])
    ):
        return MISSED
    if withdrawal is not None:
        return WITHDRAWN
    if visit is None:
        return NOT_YET_DUE
    return OVERDUE if visit.status(today) == Visit.Status.OVERDUE else NOT_YET_DUE


def _reason_counts(reasons):
    """[(reason, n)], most frequent first, then alphabetical: the order says nothing else."""
    return sorted(Counter(reasons).items(), key=lambda kv: (-kv[1], kv[0]))


# --- CONSORT ----------------------------------------------------------------------------------


def _enrolment(trial, sites, allocations):
    codes = {site.code for site in sites}
    screened = [s for s in export.screenings(trial) if s["site"] in codes]
    ineligible = [s for s in screened if not s["eligible"]]
    eligible = [s for s in screened if s["eligible"]]
    order = {text: i for i, text in enumerate(trial.criteria.values_list("text", flat=True))}
    reasons = Counter(reason for s in ineligible for reason in s["exclusion_reasons"])
    enrolment = {
        "assessed": len(screened),
        "ineligible": len(ineligible),
        # Criterion order, as the screening form asks them; retired criteria last.
        "reasons": sorted(reasons.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])),
        "not_consented": sum(not s["consented"] for s in eligible),
        "not_enrolled": sum(s["consented"] and s["participant"] is None for s in eligible),
        "not_randomized": sum(
            s["participant"] is not None and s["participant"] not in allocations for s in eligible
        ),
        "randomized": len(allocations),
    }
    enrolment["excluded"] = (
        enrolment["ineligible"]
        + enrolment["not_consented"]
        + enrolment["not_enrolled"]
        + enrolment["not_randomized"]
    )
    return enrolment


def _excluded_after(pks):
    """{participant pk: category} of the recorded exclusions after randomization."""
    return dict(
        ExclusionAfterRandomization.objects.filter(participant_id__in=pks).values_list(
            "participant_id", "category"
        )
    )


def _deaths(pks):
    """{participant pk: cause} of the participants who died."""
    return dict(Death.objects.filter(participant_id__in=pks).values_list("participant_id", "cause"))


def _primary_on_record(measure, pks):
    """{(participant pk, timepoint code)} with the primary outcome's score on a counting form."""
    if measure is None:
        return set()
    return {
        (pk, timepoint)
        for pk, timepoint, scores in FormEntry.objects.counting()
        .filter(participant_id__in=pks, instrument=measure.instrument)
        .values_list("participant_id", "timepoint", "scores")
        if (scores or {}).get(measure.score) is not None
    }


def _consort_outcome(pk, timepoint, visit, withdrawal, entries, primary, today):
    """`primary`: (measure, {(pk, timepoint code)} with its score), measure None for none."""
    level = withdrawal[0] if withdrawal else None
    erased = level == Withdrawal.Level.CONSENT
    if (pk, timepoint.code) in entries and not erased:
        measure, on_record = primary
        if measure is None or measure.instrument not in timepoint.instruments:
            return ANALYSED
        return ANALYSED if (pk, timepoint.code) in on_record else NO_PRIMARY
    if visit is not None and visit.missed_because == Visit.MissedBecause.DIED:
        return DIED
    outcome = visit_outcome(visit, withdrawal, today)
    if outcome == WITHDRAWN or (erased and outcome in (DONE, OUT_OF_WINDOW)):
        return WITHDREW_CONSENT if erased else WITHDREW_FOLLOW_UP
    if outcome in (DONE, OUT_OF_WINDOW):
        return NO_DATA
    return outcome


def consort(trial, *, sites, view, today):
    """The CONSORT flow of the participants of `sites` as counts.

    view POOLED: one column; CODES: one column per neutral code; ARMS (unblinded callers only):
    one column per arm with its label, and for the intervention arm receipt of the intervention
    and level-1 withdrawals, with the reasons typed for exclusions and discontinuations."""
    if view not in VIEWS:
        raise ValueError(f"Unknown view {view!r}")
    allocations = _allocations(trial, sites)
    standing = _standing(allocations)

    if view == POOLED:
        columns = [{"key": "all", "label": _("All randomized")}]
        column_of = dict.fromkeys(allocations, "all")
    elif view == CODES:
        # The codes the trial has, from its arms; never the arms themselves.
        codes = list(trial.arms.order_by("export_code").values_list("export_code", flat=True))
        columns = [{"key": code, "label": _("Group %(code)s") % {"code": code}} for code in codes]
        column_of = {pk: code for pk, (code, _) in allocations.items()}
    else:
        arm_of = export.arm_codes(trial)
        # The intervention arm first, then by the arms' own codes: an order by export code
        # would show the key.
        arms = sorted(export.key(trial), key=lambda k: (not k[3], k[1]))
        columns = [
            {"key": code, "label": label, "is_intervention": is_intervention}
            for _, code, label, is_intervention in arms
        ]
        column_of = {pk: arm_of[pk] for pk in allocations}

    excluded = _excluded_after(standing)
    excluded.update({pk: "in_error" for pk in allocations if pk not in standing})
    standing -= set(excluded)
    timepoints = list(trial.timepoints.all())
    withdrawals = _follow_up_withdrawals(trial, standing)
    visits = _visits(trial, standing, timepoints)
    entries = {(pk, tp) for pk, tp, _ in _counting_entries(standing)}
    measure = outcomes.primary_measure(trial)
    primary = (measure, _primary_on_record(measure, standing))
    deaths = _deaths(standing)

    by_key = {}
    for column in columns:
        column.update(
            allocated=0,
            excluded=0,
            excluded_by=dict.fromkeys((key for key, _ in EXCLUSION_CATEGORIES), 0),
            itt=0,
            died=0,
            died_by=dict.fromkeys(Death.Cause.values, 0),
            timepoints=[
                {
                    "code": tp.code,
                    "label": tp.display_label,
                    "counts": dict.fromkeys(CONSORT_OUTCOMES, 0),
                    "lost_by": dict.fromkeys(Visit.MissedBecause.values, 0),
                }
                for tp in timepoints
            ],
        )
        by_key[column["key"]] = column
    for pk in allocations:
        column = by_key[column_of[pk]]
        column["allocated"] += 1
        if pk in excluded:
            column["excluded"] += 1
            column["excluded_by"][excluded[pk]] += 1
            continue
        column["itt"] += 1
        if pk in deaths:
            column["died"] += 1
            column["died_by"][deaths[pk]] += 1
        for i, tp in enumerate(timepoints):
            visit = visits.get((pk, tp.pk))
            outcome = _consort_outcome(pk, tp, visit, withdrawals.get(pk), entries, primary, today)
            at = column["timepoints"][i]
            at["counts"][outcome] += 1
            if outcome == MISSED:
                at["lost_by"][visit.missed_because or Visit.MissedBecause.OTHER] += 1

    if view == ARMS:
        _add_unblinded_facts(trial, columns, column_of, allocations, standing, excluded)
    return {
        "view": view,
        "enrolment": _enrolment(trial, sites, allocations),
        "timepoints": [{"code": tp.code, "label": tp.display_label} for tp in timepoints],
        "primary": measure.label if measure else None,
        "columns": columns,
    }


def _add_unblinded_facts(trial, columns, column_of, allocations, standing, excluded):
    """Arm-only facts: the reasons typed for exclusions after randomization (and allocations in
    error), and in the intervention arm, receipt of the intervention and discontinuation
    (withdrawal level 1), with reasons."""
    reasons = export.in_error_reasons(trial)
    reasons.update(
        ExclusionAfterRandomization.objects.filter(participant_id__in=excluded).values_list(
            "participant_id", "reason"
        )
    )
    level_1 = dict(  # the latest reason, if one was recorded twice
        Withdrawal.objects.stopped_intervention()
        .filter(participant__trial=trial)
        .order_by("recorded_at", "pk")
        .values_list("participant_id", "reason")
    )
    intervention = [c["key"] for c in columns if c["is_intervention"]]
    in_intervention = [pk for pk in standing if column_of[pk] in intervention]
    exposures = measures.exposures(Participant.objects.filter(pk__in=in_intervention))
    for column in columns:
        mine = [pk for pk in allocations if column_of[pk] == column["key"]]
        column["excluded_reasons"] = _reason_counts(
            reasons.get(pk, "") or _("no reason recorded") for pk in mine if pk in excluded
        )
        if not column["is_intervention"]:
            column["intervention"] = None
            continue
        followed = [pk for pk in mine if pk in standing]
        received = sum(exposures[pk].attended >= 1 for pk in followed)
        discontinued = [pk for pk in followed if pk in level_1]
        column["intervention"] = {
            "received": received,
            "not_received": len(followed) - received,
            "discontinued": len(discontinued),
            "discontinued_reasons": _reason_counts(level_1[pk] for pk in discontinued),
        }


EXCLUDED_AFTER = gettext_lazy("Excluded after randomization")
RECEIVED = gettext_lazy("Received the intervention (attended 1 or more sessions)")
LEVEL_2 = gettext_lazy("Withdrew from follow-up (level 2; data kept)")
LEVEL_3 = gettext_lazy("Withdrew consent for data use (level 3; data erased)")
LOST_REASONS = [(key, label) for key, label in Visit.MissedBecause.choices if key != "died"]
CAUSES = dict(Death.Cause.choices)


def _n(label, n):
    return f"{label} (n={n})"


def _analysed_label(flow):
    if flow["primary"]:
        return _("Analysed for the primary outcome, %(outcome)s (complete cases)") % {
            "outcome": flow["primary"]
        }
    return _("Analysed (any complete form; the trial states no primary outcome)")


def _lost(n):
    return n[MISSED] + n[DIED]


def consort_diagram(flow, trial):
    """The boxes of the flow diagram (imrtrial.charts.consort_svg's input) from consort(), in
    the stages of the CONSORT 2025 diagram: enrolment, allocation, follow-up (per timepoint),
    analysis."""
    e = flow["enrolment"]
    excluded = [(0, _n(_("Excluded before randomization"), e["excluded"]))]
    excluded.append((1, _n(_("Not eligible"), e["ineligible"])))
    excluded += [(2, _n(reason, n)) for reason, n in e["reasons"]]
    excluded += [
        (1, _n(_("Eligible, did not consent"), e["not_consented"])),
        (1, _n(_("Consented, not enrolled"), e["not_enrolled"])),
        (1, _n(_("Enrolled, not (yet) randomized"), e["not_randomized"])),
    ]
    columns = flow["columns"]
    categories = dict(EXCLUSION_CATEGORIES)

    allocation = []
    for c in columns:
        where = (
            _("All randomized")
            if flow["view"] == POOLED
            else _("Allocated to %(group)s") % {"group": c["label"]}
        )
        lines = [(0, _n(where, c["allocated"]))]
        if c.get("intervention"):
            i = c["intervention"]
            lines.append((1, _n(RECEIVED, i["received"])))
            lines.append((1, _n(_("Did not receive the intervention"), i["not_received"])))
        lines.append((1, _n(EXCLUDED_AFTER, c["excluded"])))
        lines += [(2, _n(categories[key], n)) for key, n in c["excluded_by"].items() if n]
        lines += [(3, _n(reason, n)) for reason, n in c.get("excluded_reasons", ())]
        lines.append((1, _n(_("Intention-to-treat population"), c["itt"])))
        allocation.append(lines)
    stages = [{"label": _("Allocation"), "boxes": allocation}]

    if any(c.get("intervention") for c in columns):
        boxes = []
        for c in columns:
            i = c.get("intervention")
            if not i:
                boxes.append(None)
                continue
            lines = [(0, _n(_("Discontinued the intervention"), i["discontinued"]))]
            lines.append((1, _("Withdrawal level 1: follow-up continues")))
            lines += [(2, _n(reason, n)) for reason, n in i["discontinued_reasons"]]
            boxes.append(lines)
        stages.append({"label": _("Intervention"), "boxes": boxes})

    for t, tp in enumerate(flow["timepoints"]):
        boxes = []
        for c in columns:
            at = c["timepoints"][t]
            n = at["counts"]
            lines = [(0, _n(_("Lost to follow-up"), _lost(n))), (1, _n(_("Died"), n[DIED]))]
            lines += [(1, _n(label, at["lost_by"][key])) for key, label in LOST_REASONS]
            lines.append(
                (0, _n(_("Discontinued follow-up"), n[WITHDREW_FOLLOW_UP] + n[WITHDREW_CONSENT]))
            )
            lines.append((1, _n(LEVEL_2, n[WITHDREW_FOLLOW_UP])))
            lines.append((1, _n(LEVEL_3, n[WITHDREW_CONSENT])))
            waiting = n[OVERDUE] + n[NOT_YET_DUE] + n[NO_DATA]
            lines.append((0, _n(_("No data yet"), waiting)))
            lines.append((1, _n(_("Overdue"), n[OVERDUE])))
            lines.append((1, _n(_("Not yet due"), n[NOT_YET_DUE])))
            if n[NO_DATA]:
                lines.append((1, _n(_("Visit done, no complete form"), n[NO_DATA])))
            boxes.append(lines)
        stages.append(
            {"label": _("Follow-up: %(timepoint)s") % {"timepoint": tp["label"]}, "boxes": boxes}
        )

    deaths = []
    for c in columns:
        lines = [(0, _n(_("Died during follow-up"), c["died"]))]
        lines += [(1, _n(CAUSES[key], n)) for key, n in c["died_by"].items() if n]
        deaths.append(lines)
    stages.append({"label": _("Deaths"), "boxes": deaths})

    analysis = []
    for c in columns:
        lines = [(0, _n(_("Intention-to-treat population"), c["itt"]))]
        lines.append((0, _analysed_label(flow)))
        for t, tp in enumerate(flow["timepoints"]):
            n = c["timepoints"][t]["counts"]
            lines.append((1, _n(tp["label"], n[ANALYSED])))
            if n[NO_PRIMARY]:
                lines.append((2, _n(_("Assessed, primary outcome missing"), n[NO_PRIMARY])))
        analysis.append(lines)
    stages.append({"label": _("Analysis"), "boxes": analysis})

    notes = [ITT_DEFINITION, ANALYSED_DEFINITION, OUTCOME_RULE]
    notes.append(
        _(
            "One person may be ineligible on several criteria, so the reasons may add up to more "
            "than the number not eligible."
        )
    )
    if flow["view"] == CODES:
        notes.append(_("Groups are the neutral codes of the blinded export."))
    if flow["view"] != ARMS:
        notes.append(_("Reasons typed as free text are shown in the unblinded diagram only."))

    summary = [
        _(
            "%(assessed)s assessed for eligibility, %(excluded)s excluded before "
            "randomization, %(randomized)s randomized."
        )
        % {"assessed": e["assessed"], "excluded": e["excluded"], "randomized": e["randomized"]}
    ]
    for c in columns:
        analysed = ", ".join(
            f"{tp['label']} {c['timepoints'][t]['counts'][ANALYSED]}"
            for t, tp in enumerate(flow["timepoints"])
        )
        summary.append(
            _(
                "%(group)s: %(allocated)s allocated, %(excluded)s excluded after "
                "randomization, %(itt)s intention to treat, %(died)s died, analysed: "
                "%(analysed)s."
            )
            % {
                "group": c["label"],
                "allocated": c["allocated"],
                "excluded": c["excluded"],
                "itt": c["itt"],
                "died": c["died"],
                "analysed": analysed or _("no timepoints"),
            }
        )
    view_name = {POOLED: _("pooled"), CODES: _("by neutral code"), ARMS: _("by arm")}[flow["view"]]
    return {
        "title": _("CONSORT flow diagram (%(view)s): %(trial)s")
        % {"view": view_name, "trial": trial.name},
        "description": " ".join(summary),
        "assessed": [(0, _n(_("Assessed for eligibility"), e["assessed"]))],
        "excluded": excluded,
        "randomized": [(0, _n(_("Randomized"), e["randomized"]))],
        "stages": stages,
        "notes": notes,
    }


def consort_table(flow):
    """The numbers of the diagram's columns as table sections: [{"label", "rows"}], each row
    {"label", "level", "values"} (level 0 a total, 1 a part of it, 2 a reason). None in
    `values`: the fact does not apply to that arm."""
    columns = flow["columns"]

    def row(label, values, level=1):
        return {"label": label, "level": level, "values": list(values)}

    def reasons(get):
        """One row per reason typed, with its count in each column (None: not applicable)."""
        found = dict.fromkeys(reason for c in columns for reason, _ in get(c) or ())
        return [
            row(
                reason,
                (None if get(c) is None else dict(get(c)).get(reason, 0) for c in columns),
                2,
            )
            for reason in found
        ]

    allocation = [row(_("Allocated"), (c["allocated"] for c in columns), 0)]
    if any(c.get("intervention") for c in columns):

        def fact(key):
            return (c["intervention"][key] if c.get("intervention") else None for c in columns)

        allocation += [
            row(RECEIVED, fact("received")),
            row(_("Did not receive the intervention"), fact("not_received")),
            row(_("Discontinued the intervention (withdrawal level 1)"), fact("discontinued")),
            *reasons(
                lambda c: (
                    c["intervention"]["discontinued_reasons"] if c.get("intervention") else None
                )
            ),
        ]
    allocation.append(row(EXCLUDED_AFTER, (c["excluded"] for c in columns)))
    allocation += [
        row(label, (c["excluded_by"][key] for c in columns), 2)
        for key, label in EXCLUSION_CATEGORIES
    ]
    allocation += reasons(lambda c: c.get("excluded_reasons", ()))
    allocation.append(row(_("Intention-to-treat population"), (c["itt"] for c in columns), 0))
    allocation.append(row(_("Died during follow-up"), (c["died"] for c in columns)))
    sections = [{"label": _("Allocation"), "rows": allocation}]
    labels = [
        (WITHDREW_FOLLOW_UP, LEVEL_2),
        (WITHDREW_CONSENT, LEVEL_3),
        (OVERDUE, _("Overdue")),
        (NOT_YET_DUE, _("Not yet due")),
        (NO_DATA, _("Visit done, no complete form")),
        (NO_PRIMARY, _("Assessed, primary outcome missing")),
    ]
    for t, tp in enumerate(flow["timepoints"]):
        at = [c["timepoints"][t] for c in columns]
        rows = [row(_("Lost to follow-up"), (_lost(a["counts"]) for a in at))]
        rows.append(row(_("Died"), (a["counts"][DIED] for a in at), 2))
        rows += [row(label, (a["lost_by"][key] for a in at), 2) for key, label in LOST_REASONS]
        rows += [row(label, (a["counts"][key] for a in at)) for key, label in labels]
        rows.append(row(_analysed_label(flow), (a["counts"][ANALYSED] for a in at), 0))
        sections.append(
            {"label": _("Follow-up: %(timepoint)s") % {"timepoint": tp["label"]}, "rows": rows}
        )
    return sections


# --- Recruitment ------------------------------------------------------------------------------


def _months(first, last):
    """["2025-01", ...] from the month of `first` to the month of `last`."""
    months, (y, m) = [], (first.year, first.month)
    while (y, m) <= (last.year, last.month):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def recruitment(trial, *, sites, today):
    """Randomized participants per site, cumulative at the end of each month, against the
    target. Randomized means given an allocation, including ones later found made in error
    (the CONSORT diagram shows those exclusions)."""
    sites = list(sites)
    dates = list(
        Participant.objects.filter(
            trial=trial, site__in=sites, randomized_on__isnull=False
        ).values_list("site_id", "randomized_on")
    )
    months = (
        _months(min(d for _, d in dates), max([today] + [d for _, d in dates])) if dates else []
    )
    index = {month: i for i, month in enumerate(months)}
    codes = {site.code for site in sites}
    screenings = [s for s in export.screenings(trial) if s["site"] in codes]
    screened = Counter(s["site"] for s in screenings)
    eligible = Counter(s["site"] for s in screenings if s["eligible"])

    def cumulative(day_list):
        per_month = [0] * len(months)
        for day in day_list:
            per_month[index[f"{day.year:04d}-{day.month:02d}"]] += 1
        running, out = 0, []
        for n in per_month:
            running += n
            out.append(running)
        return out

    rows = [
        {
            "code": site.code,
            "name": site.name,
            "screened": screened[site.code],
            "eligible": eligible[site.code],
            "randomized": sum(site_id == site.pk for site_id, _ in dates),
            "cumulative": cumulative(d for site_id, d in dates if site_id == site.pk),
        }
        for site in sorted(sites, key=lambda s: s.name)
    ]
    total = {
        "screened": sum(r["screened"] for r in rows),
        "eligible": sum(r["eligible"] for r in rows),
        "randomized": len(dates),
        "cumulative": cumulative(d for _, d in dates),
    }
    target = trial.target_sample_size
    return {
        "months": months,
        "sites": rows,
        "total": total,
        "target": target,
        "share_of_target": Fraction(len(dates), target) if target else None,
    }


def recruitment_chart_input(report):
    series = [{"label": r["name"], "values": r["cumulative"]} for r in report["sites"]]
    if len(report["sites"]) > 1:
        series.append(
            {"label": _("Total"), "values": report["total"]["cumulative"], "strong": True}
        )
    return report["months"], series


# --- Follow-up and completeness ---------------------------------------------------------------


def follow_up(trial, *, sites, today):
    """Per timepoint, how many participants (allocation standing) have their visit done, done
    out of window, missed, overdue, not yet due, or have withdrawn from follow-up."""
    standing = _standing(_allocations(trial, sites))
    timepoints = list(trial.timepoints.all())
    withdrawals = _follow_up_withdrawals(trial, standing)
    visits = _visits(trial, standing, timepoints)
    rows = []
    for tp in timepoints:
        counts = dict.fromkeys((key for key, _ in FOLLOW_UP_CATEGORIES), 0)
        for pk in standing:
            counts[visit_outcome(visits.get((pk, tp.pk)), withdrawals.get(pk), today)] += 1
        rows.append(
            {"code": tp.code, "label": tp.display_label, "counts": counts, "total": len(standing)}
        )
    return {"categories": FOLLOW_UP_CATEGORIES, "timepoints": rows, "participants": len(standing)}


_ABBREVIATION = re.compile(r"\(([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*)\)\s*$")


def _instrument_names(code):
    """(full name, short name): the short one is the abbreviation in brackets, if any."""
    try:
        name = registry.get(code).name
    except KeyError:
        return code, code
    found = _ABBREVIATION.search(name)
    return name, found.group(1) if found else name


def _share(present, due):
    return Fraction(present, due) if due else None


def completeness(trial, *, sites, today):
    """Share of due forms with a counting entry, per instrument and timepoint.

    Due: the form is listed for the timepoint and the participant's visit there is done,
    missed or past its window, for participants whose allocation stands, who have not left
    follow-up before that visit, and whose data have not been erased (level 3)."""
    standing = _standing(_allocations(trial, sites))
    timepoints = list(trial.timepoints.all())
    withdrawals = _follow_up_withdrawals(trial, standing)
    kept = {
        pk
        for pk in standing
        if withdrawals.get(pk, (None,))[0] != Withdrawal.Level.CONSENT  # data not erased
    }
    visits = _visits(trial, kept, timepoints)
    entries = _counting_entries(kept)

    instruments = list(dict.fromkeys(code for tp in timepoints for code in tp.instruments))
    cells = {(code, tp.code): [0, 0] for tp in timepoints for code in tp.instruments}
    for tp in timepoints:
        for pk in kept:
            outcome = visit_outcome(visits.get((pk, tp.pk)), withdrawals.get(pk), today)
            if outcome not in DUE_OUTCOMES:
                continue
            for code in tp.instruments:
                cell = cells[code, tp.code]
                cell[0] += 1
                cell[1] += (pk, tp.code, code) in entries

    def summary(pairs):
        due = sum(d for d, _ in pairs)
        present = sum(p for _, p in pairs)
        return {"due": due, "present": present, "share": _share(present, due)}

    rows = []
    for code in instruments:
        name, short = _instrument_names(code)
        row_cells = [
            summary([cells[code, tp.code]]) if (code, tp.code) in cells else None
            for tp in timepoints
        ]
        rows.append(
            {
                "code": code,
                "name": name,
                "short": short,
                "cells": row_cells,
                **summary([(c["due"], c["present"]) for c in row_cells if c]),
            }
        )
    per_timepoint = [
        summary([cells[code, tp.code] for code in tp.instruments]) for tp in timepoints
    ]
    return {
        "timepoints": [{"code": tp.code, "label": tp.display_label} for tp in timepoints],
        "instruments": rows,
        "per_timepoint": per_timepoint,
        "total": summary(list(cells.values())),
    }


# --- Fidelity (unblinded) ---------------------------------------------------------------------


def fidelity(trial, *, sites):
    """Each IMR group of `sites` with its score of record and band (fidelity.measures)."""
    trial_rules = rules.for_trial(trial)
    groups = (
        ImrGroup.objects.filter(trial=trial, site__in=sites)
        .select_related("trial", "site")
        .annotate(
            n_members=Count("memberships", distinct=True),
            n_sessions=Count("sessions", distinct=True),
        )
        .order_by("site__name", "start_date", "name")
    )
    rows = []
    for group in groups:
        score, band = measures.group_score(group)
        rows.append(
            {
                "pk": group.pk,
                "name": group.name,
                "site": group.site.name,
                "start_date": group.start_date,
                "members": group.n_members,
                "sessions": group.n_sessions,
                "score": score,
                "band": band,
            }
        )
    rated = [r["score"] for r in rows if r["score"] is not None]
    in_band = Counter(r["band"] for r in rows if r["band"])
    return {
        "groups": rows,
        "bands": [(lowest, label, in_band[label]) for lowest, label in trial_rules.bands],
        "rated": len(rated),
        "mean": Fraction(sum(rated), len(rated)) if rated else None,
    }
