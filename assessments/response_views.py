"""The self-report response report (assessments.responses) as a page and a CSV file.

Who: whoever sees the trial's completeness counts (imrtrial.access.completeness_sites: the
holders of reports and of the record status dashboard, blinded or not), for the sites the gate
gives them; everyone else gets 404. Pooled: nothing on the page or in the file differs by arm.
"""

import csv
import io

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from imrtrial import access, charts
from imrtrial.spreadsheets import safe_text

from . import responses

# Of charts.PALETTE, one colour per mode in responses.MODES: blues for the participant's own
# modes, green for paper, purple for staff, vermilion for not completed.
COLOURS = ("#0072B2", "#56B4E9", "#009E73", "#CC79A7", "#D55E00")


def _scope(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    sites = access.completeness_sites(request.user, trial)
    if not sites:
        raise Http404(_("Not found."))
    today = timezone.localdate()
    return trial, sites, today, responses.response_report(trial, sites=sites, today=today)


def _chart(timepoint, index):
    """The timepoint's stacked bars: one bar per site, and all sites shown together."""
    modes = [(key, str(label)) for key, label in responses.MODES]
    bars = [(site.name, tally) for site, tally in timepoint["rows"]]
    bars.append((_("All sites shown"), timepoint["total"]))
    description = "; ".join(
        f"{name}: "
        + ", ".join(f"{label} {tally.counts[key]}" for key, label in modes)
        + " "
        + _("(%(completed)s of %(due)s due forms completed)")
        % {"completed": tally.completed, "due": tally.due}
        for name, tally in bars
    )
    return charts.stacked_bars(
        [{"label": name, "values": dict(tally.counts)} for name, tally in bars],
        modes,
        title=_("Self-report forms at %(timepoint)s, by site and mode")
        % {"timepoint": timepoint["label"]},
        description=description,
        svg_id=f"responses-{index}",
        colours=COLOURS,
    )


@require_safe
@login_required
def response_report(request, trial_key):
    trial, sites, today, report = _scope(request, trial_key)
    for index, timepoint in enumerate(report["timepoints"]):
        # Built by imrtrial.charts, every text escaped there.
        timepoint["svg"] = mark_safe(_chart(timepoint, index))
    return render(
        request,
        "assessments/response_report.html",
        {
            "trial": trial,
            "sites": sites,
            "scoped": len(sites) < trial.sites.count(),
            "today": today,
            "report": report,
            "modes": responses.MODES,
        },
    )


def _csv_row(timepoint, site_code, site_name, tally):
    rate = "" if tally.rate is None else f"{float(tally.rate) * 100:.1f}"
    return [
        safe_text(str(timepoint["code"])),
        safe_text(str(timepoint["label"])),
        safe_text(str(site_code)),
        safe_text(str(site_name)),
        *tally.in_modes(),
        tally.due,
        tally.completed,
        rate,
    ]


@require_safe
@login_required
def response_report_csv(request, trial_key):
    """The page's table as CSV: a row per timepoint and site, then the timepoint's total (site
    code "all"). Column names are fixed codes; labels are in the reader's language."""
    trial, _sites, _today, report = _scope(request, trial_key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["timepoint", "timepoint_label", "site", "site_name"]
        + [key for key, _label in responses.MODES]
        + ["due", "completed", "rate_percent"]
    )
    for timepoint in report["timepoints"]:
        for site, tally in timepoint["rows"]:
            writer.writerow(_csv_row(timepoint, site.code, site.name, tally))
        writer.writerow(_csv_row(timepoint, "all", _("All sites shown"), timepoint["total"]))
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{trial.key}-self-report-responses.csv"'
    )
    return response
