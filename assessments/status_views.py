"""The record status dashboard, the data manager's queue and the lock pages.

Blinded pages: assessors and data managers see them for the participants of their sites, and
nothing on them differs between the arms (assessments.dashboard). Locks call the services,
which check the gate and keep the reason in the audit trail.
"""

from collections import Counter
from html import escape

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from imrtrial import access, charts
from imrtrial.errors import Refused
from imrtrial.models import Participant, Perm, Site, Trial

from . import dashboard, services
from .dashboard import State
from .home import may_lock_database, may_manage_data, may_see_dashboard

PER_PAGE = 50


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


@require_safe
@login_required
def status_dashboard(request, trial_key):
    """Participants x visits, every form's state at a glance, filtered and paginated in SQL."""
    trial = access.trial_or_404(request.user, trial_key)
    if not may_see_dashboard(request.user, trial):
        raise Http404(_("Not found."))
    reader = dashboard.Reader.of(request.user, trial)
    sites = list(Site.objects.filter(pk__in=reader.sites).order_by("name"))
    timepoints = list(trial.timepoints.all())
    chosen = {
        "site": _int(request.GET.get("site")),
        "visit": request.GET.get("visit", ""),
        "state": request.GET.get("state", ""),
        "mine": request.GET.get("mine") == "1",
    }
    participants = Participant.objects.filter(trial=trial, site__in=reader.sites)
    if chosen["site"] in reader.sites:
        participants = participants.filter(site_id=chosen["site"])
    shown = [tp for tp in timepoints if tp.code == chosen["visit"]] or timepoints
    if chosen["state"] in State.LABELS:
        participants = participants.filter(dashboard.in_state(chosen["state"], shown))
    if chosen["mine"]:
        participants = participants.filter(dashboard.needs_action(reader, shown))
    # The filters run once: their ids are paginated here (a few thousand integers), where a
    # paginated queryset would run the filter's subqueries twice, for the count and the page.
    ids = list(participants.order_by("participant_id").values_list("pk", flat=True))
    page = Paginator(ids, PER_PAGE).get_page(request.GET.get("page"))
    on_page = list(
        Participant.objects.filter(pk__in=page.object_list)
        .select_related("site")
        .order_by("participant_id")
    )
    base = reverse("assessments:visit", args=[trial.key, 0]).removesuffix("0/")
    rows = dashboard.grid(
        reader,
        on_page,
        shown,
        visit_url=lambda pk: f"{base}{pk}/",
        entry_url=lambda pk, code, kind: f"{base}{pk}/forms/{code}/{kind}/",
        reconcile_url=lambda pk, code: f"{base}{pk}/reconcile/{code}/",
    )
    icons = _Icons(show_codes=len(shown) == 1)
    for _participant, cells in rows:
        for cell in cells:
            cell.icons = icons(cell.forms)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "assessments/status_dashboard.html",
        {
            "trial": trial,
            "rows": rows,
            "page": page,
            "timepoints": timepoints,
            "shown": shown,
            "one_visit": len(shown) == 1,
            "sites": sites,
            "states": State.ALL,
            "marks": dashboard.mark_legend(),
            "chosen": chosen,
            "query": query.urlencode(),
            "is_dm": bool(reader.dm_sites),
            "enters": bool(reader.entry_sites),
        },
    )


class _Icons:
    """A cell's form icons as HTML, each one link: the icon (hidden from screen readers), the
    form and its state in words (for them), a title for the pointer. Written here rather than
    in the template because a page has thousands of them: the template loop alone took most
    of the page's time (bench/dashboard.py). Every text is escaped."""

    def __init__(self, show_codes):
        self.show_codes, self.parts = show_codes, {}

    def part(self, form):
        key = (form.code, form.state, form.act)
        if key not in self.parts:
            code, label = escape(form.code), escape(form.label)
            act = " act" if form.act else ""
            said = f"{code}: {label}" + (
                " (" + escape(_("needs your action")) + ")" if form.act else ""
            )
            shown = (
                f'<span class="st-code" aria-hidden="true">{code}</span>' if self.show_codes else ""
            )
            self.parts[key] = (
                f'<a class="st st-{form.state}{act}" href="',
                f'" title="{code}: {label}"><span aria-hidden="true">{escape(form.icon)}</span>'
                f'<span class="visually-hidden">{said}</span>{shown}</a>',
            )
        return self.parts[key]

    def __call__(self, forms):
        html = []
        for form in forms:
            start, end = self.part(form)
            html += (start, escape(form.url), end)
        return mark_safe("".join(html))  # noqa: S308 - every piece escaped above


@require_safe
@login_required
def queue(request, trial_key):
    """What waits on the data manager, with counts per site and the ageing of queries."""
    trial = access.trial_or_404(request.user, trial_key)
    if not may_manage_data(request.user, trial):
        raise Http404(_("Not found."))
    sites = list(access.sites_where(request.user, Perm.VERIFY_FORMS, trial).order_by("name"))
    now = timezone.now()
    today = timezone.localdate()
    n = dashboard.QUEUE_ROWS
    reconcile = dashboard.to_reconcile(trial, sites)
    verify = dashboard.to_verify(trial, sites)
    answered = dashboard.answered_queries(trial, sites)
    overdue = dashboard.overdue_visits(trial, sites, today)
    # Casebooks with nothing left to do, less those a registered rule blocks (an open query, a
    # missing signature): the count and the list agree with what lock_casebook would say.
    candidates = list(
        dashboard.casebooks_to_lock(trial, sites).values_list("pk", "site_id", "participant_id")
    )
    blocked = services.casebooks_blocked(trial, [pk for pk, _, _ in candidates])
    ready = [(pk, site, pid) for pk, site, pid in candidates if pk not in blocked]
    counts = {
        "reconcile": dashboard.per_site(reconcile, "participant__site"),
        "verify": dashboard.per_site(verify, "participant__site"),
        "answered": dashboard.per_site(answered, "participant__site"),
        "ready": dict(Counter(site for _, site, _ in ready)),
        "overdue": dashboard.per_site(overdue, "participant__site"),
    }
    ageing = dashboard.query_ageing(trial, sites, now)
    site_rows = [
        {
            "site": site,
            "counts": [counts[key].get(site.pk, 0) for key in counts],
            "ageing": ageing[site.pk],
            "open": sum(ageing[site.pk]),
        }
        for site in sites
    ]
    totals = [sum(row["counts"][i] for row in site_rows) for i in range(len(counts))]
    bins = [(str(i), str(label)) for i, (label, _low, _high) in enumerate(dashboard.AGE_BINS)]
    svg = charts.stacked_bars(
        [
            {"label": row["site"].name, "values": {str(i): v for i, v in enumerate(row["ageing"])}}
            for row in site_rows
        ],
        bins,
        title=_("Waiting data queries by days open, per site"),
        description="; ".join(
            f"{row['site'].name}: "
            + ", ".join(f"{label} {v}" for (_, label), v in zip(bins, row["ageing"], strict=True))
            for row in site_rows
        ),
        svg_id="query-ageing",
    )
    shown = [pk for pk, _, _ in sorted(ready, key=lambda row: row[2])[:n]]
    ready_rows = Participant.objects.filter(pk__in=shown).select_related("site")
    ready_rows = sorted(ready_rows, key=lambda p: p.participant_id)
    return render(
        request,
        "assessments/queue.html",
        {
            "trial": trial,
            "site_rows": site_rows,
            "totals": totals,
            "age_bins": [label for label, _, _ in dashboard.AGE_BINS],
            "svg": mark_safe(svg),  # built by imrtrial.charts, every text escaped there
            "reconcile": reconcile.select_related("participant", "visit").order_by(
                "participant__participant_id", "timepoint", "instrument"
            )[:n],
            "verify": verify.select_related("participant", "visit").order_by(
                "participant__participant_id", "timepoint", "instrument"
            )[:n],
            "answered": answered.select_related(
                "participant", "visit__timepoint", "entry"
            ).order_by("opened_at")[:n],
            "overdue": overdue.select_related("participant", "timepoint").order_by(
                "window_end", "participant__participant_id"
            )[:n],
            "ready": ready_rows,
            "rows_shown": n,
        },
    )


@require_POST
@login_required
def casebook_lock(request, trial_key, participant_id):
    """Lock or unlock one participant's casebook, with a reason (data manager)."""
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    access.require(request.user, Perm.VERIFY_FORMS, trial, participant.site)
    action = request.POST.get("action")
    service = {"lock": services.lock_casebook, "unlock": services.unlock_casebook}.get(action)
    try:
        if service is None:
            raise Refused(_("Choose to lock or to unlock."))
        service(participant, by=request.user, reason=request.POST.get("reason", ""))
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            (
                _("The casebook of %(pid)s is locked.")
                if action == "lock"
                else _("The casebook of %(pid)s is unlocked.")
            )
            % {"pid": participant.participant_id},
        )
    return redirect("assessments:participant_detail", trial.key, participant.participant_id)


@login_required
def database_lock(request, trial_key):
    """What blocks the database lock, and the lock (or the exceptional unlock) with a reason."""
    trial = access.trial_or_404(request.user, trial_key)
    if not may_lock_database(request.user, trial):
        raise Http404(_("Not found."))
    error = None
    if request.method == "POST":
        action = request.POST.get("action")
        service = {"lock": services.lock_database, "unlock": services.unlock_database}.get(action)
        try:
            if service is None:
                raise Refused(_("Choose to lock or to unlock."))
            service(trial, by=request.user, reason=request.POST.get("reason", ""))
        except Refused as exc:
            error = str(exc)
        else:
            messages.success(
                request,
                _("The database is locked.")
                if action == "lock"
                else _("The database is unlocked: an exceptional event, kept in the audit trail."),
            )
            return redirect("assessments:database_lock", trial.key)
    trial = Trial.objects.get(pk=trial.pk)
    return render(
        request,
        "assessments/database_lock.html",
        {
            "trial": trial,
            "locked": trial.status == Trial.Status.LOCKED,
            "blockers": services.lock_blockers(trial),
            "error": error,
            "reason": request.POST.get("reason", "") if error else "",
        },
        status=200,
    )
