"""Monitoring pages: SDV progress per site and visit, the forms to verify, and a monitor's
read-only view of a visit and of a form, with the SDV mark.

Blinded pages, for monitors (and data managers, read-only): nothing here reads an allocation,
free text an unblinded author wrote shows only as "text exists" (imrtrial.access.text_for), and
no form shows who entered it. Every page asks the gate for the participant's site.
"""

from types import SimpleNamespace

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from assessments import queries, registry
from assessments.models import DataQuery, FormEntry, Visit
from assessments.views import shown_value
from imrtrial import access, charts
from imrtrial.errors import Refused

from . import progress
from .forms import MarkForm
from .models import SdvPlan, SourceVerification
from .services import mark_source_verified

ROWS_PER_PAGE = 100
CATEGORIES = [
    (progress.VERIFIED, gettext_lazy("Source-verified")),
    (progress.CLEARED, gettext_lazy("SDV cleared by a change")),
    ("awaiting", gettext_lazy("Not yet verified")),
]
# Done in green, cleared in orange, waiting in sky blue (Okabe-Ito: told apart without colour
# vision too; every bar also carries its number).
COLOURS = (charts.PALETTE[2], charts.PALETTE[1], charts.PALETTE[4])


def _sites_or_404(user, trial):
    sites = access.sdv_progress_sites(user, trial).order_by("name")
    if not sites.exists():
        raise Http404(_("Not found."))
    return sites


def _may_read(user, participant):
    """A monitor, or a data manager of the participant's site: the participants they oversee."""
    return (
        access.sdv_progress_sites(user, participant.trial).filter(pk=participant.site_id).exists()
    )


def _summary(counter):
    required = counter.get("required", 0)
    verified, cleared = counter.get(progress.VERIFIED, 0), counter.get(progress.CLEARED, 0)
    return {
        "required": required,
        "verified": verified,
        "cleared": cleared,
        "awaiting": required - verified - cleared,
        "outside": counter.get("outside", 0),
        "percent": round(100 * verified / required) if required else None,
    }


def _chart(rows, *, title, svg_id):
    bars = [
        {"label": r["label"], "values": {key: r[key] for key, _label in CATEGORIES}} for r in rows
    ]
    description = "; ".join(
        _(
            "%(label)s: %(required)s required, %(verified)s source-verified, "
            "%(cleared)s cleared by a change, %(awaiting)s not yet verified"
        )
        % r
        for r in rows
    )
    # Built by imrtrial.charts, every text escaped there.
    return mark_safe(
        charts.stacked_bars(
            bars,
            [(key, str(label)) for key, label in CATEGORIES],
            title=str(title),
            description=description,
            svg_id=svg_id,
            colours=COLOURS,
        )
    )


@login_required
def progress_page(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    sites = list(_sites_or_404(request.user, trial))
    counts = progress.counts(trial, sites)
    timepoints = list(trial.timepoints.order_by("order"))
    by_site, by_visit, grid = [], [], []
    for site in sites:
        total = sum((c for (s, _), c in counts.items() if s == site.pk), progress.Counter())
        by_site.append({"label": site.name, "site": site, **_summary(total)})
        for tp in timepoints:
            grid.append(
                {"site": site, "timepoint": tp, **_summary(counts.get((site.pk, tp.code), {}))}
            )
    for tp in timepoints:
        total = sum((c for (_, t), c in counts.items() if t == tp.code), progress.Counter())
        by_visit.append({"label": tp.display_label, "timepoint": tp, **_summary(total)})
    return render(
        request,
        "monitoring/progress.html",
        {
            "trial": trial,
            "plan": SdvPlan.of(trial),
            "by_site": by_site,
            "by_visit": by_visit,
            "grid": grid,
            "site_chart": _chart(
                by_site, title=_("SDV of required forms, per site"), svg_id="sdv-site"
            ),
            "visit_chart": _chart(
                by_visit, title=_("SDV of required forms, per visit"), svg_id="sdv-visit"
            ),
        },
    )


@login_required
def form_list(request, trial_key):
    """The data of record at the user's sites with their SDV state, filtered."""
    trial = access.trial_or_404(request.user, trial_key)
    sites = _sites_or_404(request.user, trial)
    site = request.GET.get("site", "")
    chosen = sites.filter(pk=site) if site.isdigit() else sites
    timepoints = list(trial.timepoints.order_by("order"))
    timepoint = request.GET.get("timepoint", "")
    if timepoint not in {tp.code for tp in timepoints}:
        timepoint = ""
    state = request.GET.get("state", "")
    if state not in progress.LABELS:
        state = ""
    every = request.GET.get("every") == "1"
    rows = progress.forms(
        trial, list(chosen), timepoint=timepoint, state=state, required_only=not every
    )
    order = {tp.code: tp.order for tp in timepoints}
    rows.sort(key=lambda r: (r[1], order.get(r[2], 99), r[3]))
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    labels = {tp.code: tp.display_label for tp in timepoints}
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "monitoring/form_list.html",
        {
            "trial": trial,
            "sites": sites,
            "site": site,
            "timepoints": timepoints,
            "timepoint": timepoint,
            "states": list(progress.LABELS.items()),
            "state": state,
            "every": every,
            "page": page,
            "rows": [
                {
                    "pk": pk,
                    "participant_id": pid,
                    "timepoint": labels.get(tp, tp),
                    "instrument": instrument,
                    "required": required,
                    "sdv": sdv,
                }
                for pk, pid, tp, instrument, required, sdv in page.object_list
            ],
            "query": query.urlencode(),
        },
    )


def _visit_or_404(request, trial, visit_pk):
    visit = get_object_or_404(
        Visit.objects.select_related("participant", "participant__site", "timepoint"),
        pk=visit_pk,
        participant__trial=trial,
    )
    if not _may_read(request.user, visit.participant):
        raise Http404(_("Not found."))
    return visit


@login_required
def visit_page(request, trial_key, visit_pk):
    """Every form due at the visit, its state and SDV; the visit's queries."""
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request, trial, visit_pk)
    participant = visit.participant
    counted = {
        e.instrument: e
        for e in FormEntry.objects.counting().filter(
            participant=participant, timepoint=visit.timepoint.code
        )
    }
    marks = progress.latest_marks(entry__in=[e.pk for e in counted.values()])
    plan = SdvPlan.of(trial)
    forms = []
    for code in visit.timepoint.instruments:
        entry = counted.get(code)
        forms.append(
            {
                "code": code,
                "name": registry.name_of(code),
                "entry": entry,
                "required": progress.plan.requires(
                    plan, trial.key, participant.site.code, participant.participant_id, code
                ),
                "sdv": progress.state_of(entry, marks.get(entry.pk)) if entry else None,
            }
        )
    return render(
        request,
        "monitoring/visit.html",
        {
            "trial": trial,
            "visit": visit,
            "forms": forms,
            "visit_queries": _queries(request.user, visit.queries.all()),
            "may_ask": queries.may_open(request.user, participant),
        },
    )


def _queries(user, rows):
    rows = rows.select_related(
        "participant", "participant__site", "participant__trial", "visit", "entry"
    ).order_by("opened_at", "pk")
    return [q for q in rows if queries.may_see(user, q)]


def readable_values(user, entry):
    """[(item, value as the user may read it)]: free text an unblinded author wrote shows only
    as "text exists" (the rule of imrtrial.access.text_for, as on the query page)."""
    participant = entry.participant
    free_text = registry.unexported_items(entry.instrument, entry.values)
    try:
        items = registry.get(entry.instrument).items
    except KeyError:  # no longer installed: every value is treated as free text
        items = [SimpleNamespace(code=code, label="") for code in sorted(entry.values)]
    rows = []
    for item in items:
        value = shown_value(entry.values.get(item.code))
        if item.code in free_text:
            value = access.text_for(
                user, value, entry.entered_by, participant.trial, participant.site
            )
        rows.append((item, value))
    return rows


@login_required
def entry_page(request, trial_key, entry_pk):
    """One form read-only, its SDV and the marks so far; a monitor marks it here."""
    trial = access.trial_or_404(request.user, trial_key)
    entry = get_object_or_404(
        FormEntry.objects.select_related("participant", "participant__site", "visit"),
        pk=entry_pk,
        participant__trial=trial,
        kind__in=FormEntry.COUNTING_KINDS,  # first and second entries are seen by their typists
    )
    participant = entry.participant
    if entry.visit is None or not _may_read(request.user, participant):
        raise Http404(_("Not found."))
    may_mark = access.may_source_verify(request.user, participant)
    form = MarkForm(
        request.POST if request.method == "POST" else None,
        initial={"checked_on": timezone.localdate()},
    )
    if request.method == "POST":
        if not may_mark:
            raise Http404(_("Not found."))
        if form.is_valid():
            try:
                mark_source_verified(
                    entry, by=request.user, checked_on=form.cleaned_data["checked_on"]
                )
            except Refused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    _("%(instrument)s marked as source-verified.")
                    % {"instrument": entry.instrument},
                )
                return redirect("monitoring:entry", trial.key, entry.pk)
    plan = SdvPlan.of(trial)
    site = participant.site
    marks = [
        (m, access.author_label(request.user, m.by, trial, site))
        for m in SourceVerification.objects.filter(entry=entry).select_related("by")
    ]
    return render(
        request,
        "monitoring/entry.html",
        {
            "trial": trial,
            "entry": entry,
            "visit": entry.visit,
            "name": registry.name_of(entry.instrument),
            "values": readable_values(request.user, entry),
            "counts": FormEntry.objects.counting().filter(pk=entry.pk).exists(),
            "required": progress.plan.requires(
                plan, trial.key, site.code, participant.participant_id, entry.instrument
            ),
            "sdv": progress.state_of(entry),
            "marks": marks,
            "form": form if may_mark else None,
            "may_ask": queries.may_open(request.user, participant)
            and entry.status != FormEntry.Status.LOCKED,
            "entry_queries": _queries(request.user, DataQuery.objects.filter(entry=entry)),
        },
    )
