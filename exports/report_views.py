"""Trial reports: CONSORT flow, recruitment, follow-up, completeness, fidelity.

Who: holders of export_blinded, view_unblinded or manage_trial (migration imrtrial 0002: data
managers, statisticians, key holders, trial administrators, coordinators, facilitators and
fidelity raters); everyone else gets 404. Scope: the sites where the user holds one of those.
Arm-level pages (the CONSORT diagram by arm, fidelity) need allocation access at every site in
scope (imrtrial.access.may_see_reports_by_arm) and answer 404 to everyone else, who get the blinded
diagram (pooled, or by neutral code A/B). Views of allocation data and downloads are logged.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from assessments import outcomes
from assessments.outcomes import Measure
from imrtrial import access, charts
from imrtrial.audit import log_access
from imrtrial.i18n_text import shown
from imrtrial.models import AccessLog

from . import reports


def _scope(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    sites = access.report_sites(request.user, trial)
    if not sites:
        raise Http404(_("Not found."))
    context = {
        "trial": trial,
        "sites": sites,
        "scoped": len(sites) < trial.sites.count(),
        "unblinded": access.may_see_reports_by_arm(request.user, trial, sites),
        "codes": access.may_see_reports_by_code(request.user, trial, sites),
        "today": timezone.localdate(),
    }
    return trial, sites, context


@require_safe
@login_required
def index(request, trial_key):
    _trial, _sites, context = _scope(request, trial_key)
    context["report_name"] = _("Reports")
    return render(request, "exports/report_index.html", context)


def _consort(request, trial_key):
    trial, sites, context = _scope(request, trial_key)
    view = request.GET.get("view") or (reports.ARMS if context["unblinded"] else reports.POOLED)
    if view not in reports.VIEWS:
        return (
            None,
            None,
            HttpResponseBadRequest(
                _(
                    "Unknown view: choose view=pooled or view=codes (or view=arms where you may "
                    "see allocation data)."
                ),
                content_type="text/plain; charset=utf-8",
            ),
        )
    if view == reports.ARMS and not context["unblinded"]:
        raise Http404(_("Not found."))
    if view == reports.CODES and not context["codes"]:
        raise Http404(_("Not found."))
    flow = reports.consort(trial, sites=sites, view=view, today=context["today"])
    svg = charts.consort_svg(reports.consort_diagram(flow, trial), svg_id="consort")
    context.update(view=view, flow=flow, svg=svg)
    return trial, context, None


@require_safe
@login_required
def consort(request, trial_key):
    trial, context, error = _consort(request, trial_key)
    if error:
        return error
    if context["view"] == reports.ARMS:
        log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, "CONSORT diagram by arm")
    context.update(
        report_name=_("CONSORT flow diagram"),
        svg=mark_safe(context["svg"]),  # built by imrtrial.charts, every text escaped there
        table=reports.consort_table(context["flow"]),
        views=[
            (reports.POOLED, _("Pooled")),
            *([(reports.CODES, _("By neutral code (A/B)"))] if context["codes"] else []),
            *([(reports.ARMS, _("By arm"))] if context["unblinded"] else []),
        ],
        definition=reports.ANALYSED_DEFINITION,
        outcome_rule=reports.OUTCOME_RULE,
        itt_definition=reports.ITT_DEFINITION,
        outcomes=[
            (o.get_rank_display(), Measure(o.instrument, o.score).label, o.timepoint)
            for o in outcomes.of(trial)
        ],
    )
    return render(request, "exports/report_consort.html", context)


@require_safe
@login_required
def consort_svg(request, trial_key):
    trial, context, error = _consort(request, trial_key)
    if error:
        return error
    view = context["view"]
    log_access(request, trial, AccessLog.Action.EXPORT, f"CONSORT diagram SVG ({view})", view=view)
    response = HttpResponse(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + context["svg"],
        content_type="image/svg+xml; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{trial.key}-consort-{view}.svg"'
    return response


@require_safe
@login_required
def recruitment(request, trial_key):
    trial, sites, context = _scope(request, trial_key)
    report = reports.recruitment(trial, sites=sites, today=context["today"])
    months, series = reports.recruitment_chart_input(report)
    total = report["total"]["randomized"]
    svg = charts.line_chart(
        months,
        series,
        title=_("Randomized participants, cumulative, by site"),
        description=(
            (
                _("%(n)s randomized of a target of %(target)s.")
                % {"n": total, "target": report["target"]}
                if report["target"]
                else _("%(n)s randomized.") % {"n": total}
            )
            + " "
            + "; ".join(f"{r['name']}: {r['randomized']}" for r in report["sites"])
            + "."
        ),
        target=report["target"],
        svg_id="recruitment",
    )
    context.update(
        report_name=_("Recruitment"), report=report, svg=mark_safe(svg), rows=_month_rows(report)
    )
    return render(request, "exports/report_recruitment.html", context)


def _month_rows(report):
    """Month by month, newest first: (month, [cumulative per site], cumulative total)."""
    rows = [
        (
            month,
            [site["cumulative"][i] for site in report["sites"]],
            report["total"]["cumulative"][i],
        )
        for i, month in enumerate(report["months"])
    ]
    return rows[::-1]


@require_safe
@login_required
def follow_up(request, trial_key):
    trial, sites, context = _scope(request, trial_key)
    report = reports.follow_up(trial, sites=sites, today=context["today"])
    svg = charts.stacked_bars(
        [{"label": row["label"], "values": row["counts"]} for row in report["timepoints"]],
        report["categories"],
        title=_("Follow-up visits by timepoint"),
        description="; ".join(
            row["label"]
            + ": "
            + ", ".join(f"{label} {row['counts'][key]}" for key, label in report["categories"])
            for row in report["timepoints"]
        ),
        svg_id="follow-up",
    )
    rows = [
        {
            "label": row["label"],
            "cells": [row["counts"][key] for key, _ in report["categories"]],
            "total": row["total"],
        }
        for row in report["timepoints"]
    ]
    context.update(
        report_name=_("Follow-up completion"), report=report, svg=mark_safe(svg), rows=rows
    )
    return render(request, "exports/report_followup.html", context)


def _score(value):
    return number_format(f"{float(value):.2f}")


def _percent(value):
    return f"{float(value) * 100:.0f}%"


@require_safe
@login_required
def completeness(request, trial_key):
    trial, sites, context = _scope(request, trial_key)
    report = reports.completeness(trial, sites=sites, today=context["today"])
    svg = charts.value_bars(
        [
            {
                "label": row["short"],
                "value": row["share"],
                "note": _("(%(present)s of %(due)s)")
                % {"present": row["present"], "due": row["due"]},
            }
            for row in report["instruments"]
        ],
        title=_("Due forms entered, by instrument (all timepoints)"),
        description="; ".join(
            _("%(name)s: %(present)s of %(due)s due forms entered")
            % {"name": shown(row["name"]), "present": row["present"], "due": row["due"]}
            for row in report["instruments"]
        ),
        low=0,
        high=1,
        ticks=[0, 0.25, 0.5, 0.75, 1],
        fmt=_percent,
        svg_id="completeness",
        empty=_("nothing due yet"),
    )
    by_timepoint = charts.value_bars(
        [
            {
                "label": tp["label"],
                "value": cell["share"],
                "note": _("(%(present)s of %(due)s)")
                % {"present": cell["present"], "due": cell["due"]},
            }
            for tp, cell in zip(report["timepoints"], report["per_timepoint"], strict=True)
        ],
        title=_("Due forms entered, by timepoint (all instruments)"),
        description="; ".join(
            _("%(name)s: %(present)s of %(due)s due forms entered")
            % {"name": tp["label"], "present": cell["present"], "due": cell["due"]}
            for tp, cell in zip(report["timepoints"], report["per_timepoint"], strict=True)
        ),
        low=0,
        high=1,
        ticks=[0, 0.25, 0.5, 0.75, 1],
        fmt=_percent,
        svg_id="completeness-timepoints",
        empty=_("nothing due yet"),
    )
    context.update(
        report_name=_("Data completeness"),
        report=report,
        svg=mark_safe(svg),
        svg_timepoints=mark_safe(by_timepoint),
    )
    return render(request, "exports/report_completeness.html", context)


@require_safe
@login_required
def fidelity(request, trial_key):
    trial, sites, context = _scope(request, trial_key)
    if not context["unblinded"]:
        raise Http404(_("Not found."))
    log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, "Fidelity report")
    report = reports.fidelity(trial, sites=sites)
    svg = charts.value_bars(
        [
            {"label": f"{row['name']} ({row['site']})", "value": row["score"], "note": row["band"]}
            for row in report["groups"]
        ],
        title=_("IMR Fidelity Scale score of record, by group"),
        description="; ".join(
            f"{row['name']}: "
            + (
                f"{_score(row['score'])} ({row['band']})"
                if row["score"] is not None
                else _("not rated")
            )
            for row in report["groups"]
        )
        or _("No IMR groups yet."),
        low=1,
        high=5,
        ticks=[1, 2, 3, 4, 5],
        fmt=_score,
        tick_fmt=str,
        rules=[(lowest, label) for lowest, label, _ in report["bands"][1:]],
        svg_id="fidelity",
        empty=_("not yet rated (no consensus end rating)"),
    )
    context.update(report_name=_("Fidelity of IMR groups"), report=report, svg=mark_safe(svg))
    return render(request, "exports/report_fidelity.html", context)


urlpatterns = [
    path("<slug:trial_key>/reports/", index, name="reports"),
    path("<slug:trial_key>/reports/consort/", consort, name="report_consort"),
    path("<slug:trial_key>/reports/consort.svg", consort_svg, name="report_consort_svg"),
    path("<slug:trial_key>/reports/recruitment/", recruitment, name="report_recruitment"),
    path("<slug:trial_key>/reports/follow-up/", follow_up, name="report_follow_up"),
    path("<slug:trial_key>/reports/completeness/", completeness, name="report_completeness"),
    path("<slug:trial_key>/reports/fidelity/", fidelity, name="report_fidelity"),
]
