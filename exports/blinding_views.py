"""The report "Blinding of assessors": how the assessors guess the arm, visit by visit.

Who: whoever may see the trial's reports (exports.report_views, the same scope and the same 404).
Everyone sees the pooled guess rates, which read no arm. Bang's index per arm is added for those
the gate allows (imrtrial.access.may_see_blinding_index: the key holder after the database
lock, those unblinded at every site in scope once the trial is unblinded); that view is logged.
For everyone else the page is built without reading an allocation, so it is the same whichever
participant is in which arm.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from imrtrial import access, charts
from imrtrial.audit import log_access
from imrtrial.models import AccessLog

from . import blinding
from .report_views import _scope


@require_safe
@login_required
def blinding_report(request, trial_key):
    trial, sites, context = _scope(request, trial_key)
    rates = blinding.guess_rates(trial, sites=sites)
    index = None
    if access.may_see_blinding_index(request.user, trial, sites):
        log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, "Blinding index by arm")
        index = blinding.bang_index(trial, sites=sites)
    context.update(
        report_name=_("Blinding of assessors"),
        rates=rates,
        svg=mark_safe(_rates_chart(rates)),  # built by imrtrial.charts, every text escaped there
        index=index,
    )
    return render(request, "exports/report_blinding.html", context)


def _rates_chart(rates):
    return charts.stacked_bars(
        [{"label": row["label"], "values": row["counts"]} for row in rates["timepoints"]],
        rates["choices"],
        title=_("Assessors' guesses by timepoint, all participants"),
        description="; ".join(
            f"{row['label']}: "
            + ", ".join(f"{label} {row['counts'][key]}" for key, label in rates["choices"])
            for row in rates["timepoints"]
        )
        or _("No timepoint asks for a guess."),
        svg_id="blinding-guesses",
    )


urlpatterns = [
    path("<slug:trial_key>/reports/blinding/", blinding_report, name="report_blinding"),
]
