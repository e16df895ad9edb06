"""The participant's case file, the assessor's worklist and CRF entry.

Pages shared by blinded and unblinded roles: allocation data appears here only after
imrtrial.access says the user may see it, and nothing listed here differs by arm.
"""

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, Window
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from imrtrial import access
from imrtrial.audit import ReasonRequired, log_access
from imrtrial.errors import Refused
from imrtrial.i18n_text import shown
from imrtrial.models import AccessLog, Participant, Perm, Role
from imrtrial.rowloader import RowLoader
from randomization.models import Withdrawal
from randomization.services import allocation_of

from . import queries, registry, services
from .forms import (
    AnswerForm,
    DeathForm,
    ExclusionForm,
    IncidentForm,
    QueryActionForm,
    QueryForm,
    WithdrawalForm,
)
from .models import (
    DataQuery,
    Death,
    ExclusionAfterRandomization,
    FormEntry,
    QueryMessage,
    Reminder,
    Visit,
)

WORKLIST_ROWS = 100  # the soonest deadlines; the count of the rest is shown


def shown_value(value):
    """A stored value as a form shows it: a decimal with the reader's decimal separator (4,5 in
    Danish and Dutch; the entry accepts either), anything else as services._as_text."""
    if isinstance(value, float):
        return number_format(value)
    return services._as_text(value)


def _post(request):
    return request.POST if request.method == "POST" else None


@login_required
def participant_list(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, Perm.VIEW_PARTICIPANTS, trial)
    participants = access.participants_visible_to(request.user, trial).select_related("site")
    by_site = participants.values("site__name").annotate(n=Count("id")).order_by("site__name")
    return render(
        request,
        "assessments/participant_list.html",
        {"trial": trial, "participants": participants, "by_site": by_site},
    )


def _exclusion_shown(user, participant):
    """(exclusion, who decided, reason), the texts as the reader may see them, or None: typed
    text may name the arm and is shown by author, as withdrawal reasons are."""
    exclusion = (
        ExclusionAfterRandomization.objects.filter(participant=participant)
        .select_related("recorded_by")
        .first()
    )
    if exclusion is None:
        return None
    trial, site, author = participant.trial, participant.site, exclusion.recorded_by
    return (
        exclusion,
        access.text_for(user, exclusion.decided_by, author, trial, site),
        access.text_for(user, exclusion.reason, author, trial, site),
    )


@login_required
def participant_detail(request, trial_key, participant_id):
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    unblinded = access.may_see_allocation(request.user, trial, participant.site)
    withdrawals = participant.withdrawals.select_related("recorded_by")
    if not unblinded:
        withdrawals = withdrawals.follow_up()  # stopping the intervention tells the arm
    context = {
        "trial": trial,
        "participant": participant,
        "visits": participant.visits.select_related("timepoint", "assessor"),
        "today": timezone.localdate(),
        "allocation": None,
        "withdrawals": [
            (
                w,
                access.text_for(request.user, w.reason, w.recorded_by, trial, participant.site),
            )
            for w in withdrawals
        ],
        "may_withdraw": access.may_withdraw(request.user, participant),
        "exclusion": _exclusion_shown(request.user, participant),
        "death": Death.objects.filter(participant=participant).first(),
        "follow_up_ended": participant.status in Participant.FOLLOW_UP_ENDED,
        "may_lock": access.has(request.user, Perm.VERIFY_FORMS, trial, participant.site),
        # The safety event log (safety.views) opens to whoever may see allocation data here.
        "may_see_safety_events": unblinded,
    }
    if context["may_lock"] and participant.casebook_locked_at is None:
        context["casebook_blockers"] = services.lock_blockers(trial, participant)
    if unblinded:
        context["allocation"] = allocation_of(participant)
        if context["allocation"]:
            log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, participant)
    return render(request, "assessments/participant_detail.html", context)


@login_required
def withdrawal_new(request, trial_key, participant_id):
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    if not access.may_withdraw(request.user, participant):
        raise Http404(_("Not found."))
    form = WithdrawalForm(
        _post(request),
        may_stop_intervention=access.may_withdraw(
            request.user, participant, Withdrawal.Level.INTERVENTION
        ),
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.withdraw(
                participant,
                d["level"],
                by=request.user,
                reason=d["reason"],
                withdrawn_on=d["withdrawn_on"],
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Withdrawal recorded."))
            return redirect("assessments:participant_detail", trial.key, participant.participant_id)
    return render(
        request,
        "assessments/withdrawal_form.html",
        {
            "trial": trial,
            "participant": participant,
            "form": form,
        },
    )


def _follow_up_end_page(request, trial_key, participant_id, form_class, record, template):
    """A page that ends a participant's follow-up (exclusion, death): offered, like the
    withdrawal, to those who may record withdrawals, alike for every participant."""
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    if not access.may_withdraw(request.user, participant):
        raise Http404(_("Not found."))
    form = form_class(_post(request))
    if request.method == "POST" and form.is_valid():
        try:
            message = record(participant, form.cleaned_data)
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, message)
            return redirect("assessments:participant_detail", trial.key, participant.participant_id)
    return render(request, template, {"trial": trial, "participant": participant, "form": form})


@login_required
def exclusion_new(request, trial_key, participant_id):
    def record(participant, d):
        services.exclude_after_randomization(
            participant,
            d["category"],
            by=request.user,
            decided_by=d["decided_by"],
            excluded_on=d["excluded_on"],
            reason=d["reason"],
        )
        return _("Exclusion recorded: the participant's follow-up has ended.")

    return _follow_up_end_page(
        request, trial_key, participant_id, ExclusionForm, record, "assessments/exclusion_form.html"
    )


@login_required
def death_new(request, trial_key, participant_id):
    def record(participant, d):
        services.record_death(participant, by=request.user, died_on=d["died_on"], cause=d["cause"])
        return _("Death recorded: the visits after it are marked missed.")

    return _follow_up_end_page(
        request, trial_key, participant_id, DeathForm, record, "assessments/death_form.html"
    )


# --- Worklist and visits ----------------------------------------------------------------------


def _entry_sites(user, trial):
    return access.sites_where(user, Perm.ENTER_INTERVIEW, trial) | access.sites_where(
        user, Perm.ENTER_STAFF_RATING, trial
    )


@login_required
def worklist(request, trial_key):
    """The user's due and overdue visits with the forms to fill, soonest deadline first."""
    trial = access.trial_or_404(request.user, trial_key)
    sites = _entry_sites(request.user, trial)
    site_of = {site.pk: site for site in sites}
    if not site_of:
        raise Http404(_("Not found."))
    today = timezone.localdate()
    visits = (
        Visit.objects.due(today)
        .filter(participant__trial=trial, participant__site__in=list(site_of))
        .exclude(participant__status__in=Participant.FOLLOW_UP_ENDED)
        .filter(Q(assessor=request.user) | Q(assessor__isnull=True))
        .select_related("participant")
        .defer("participant__factor_levels")
        # How many there are in all, counted by the same statement (a window over the rows
        # before the limit), not by a second query.
        .annotate(total=Window(Count("pk")))
        .order_by("window_end", "participant__participant_id")
    )
    visits = list(visits[:WORKLIST_ROWS])
    total = visits[0].total if visits else 0
    # The trial, its sites and timepoints are few: each read once, not once per row (the JSON
    # of a joined timepoint was decoded again for every row).
    timepoint_of = {timepoint.pk: timepoint for timepoint in trial.timepoints.all()}
    for visit in visits:
        visit.timepoint = timepoint_of[visit.timepoint_id]
        visit.participant.trial = trial
        visit.participant.site = site_of[visit.participant.site_id]
    # The forms in, as pairs rather than model objects: a full worklist has some 1,500.
    entered = defaultdict(set)
    for visit_id, code in (
        FormEntry.objects.counting()
        .filter(visit__in=[visit.pk for visit in visits])
        .values_list("visit_id", "instrument")
    ):
        entered[visit_id].add(code)
    form_of = _WorklistForms(request.user, trial)
    row_of = _WorklistRows(trial)
    rows = [
        row_of(visit, visit.status(today), form_of(visit, entered[visit.pk])) for visit in visits
    ]
    return render(
        request,
        "assessments/worklist.html",
        {
            "trial": trial,
            "rows": rows,
            "today": today,
            "total": total,
            "queries": [
                (q, queries.age_days(q, today))
                for q in queries.waiting_on(request.user, trial, list(site_of))
            ],
        },
    )


_STAND_IN = 4611686018427387904  # 2**62, a visit number no trial reaches: replaced after


def _around_the_visit(text):
    """(head, tail) of a URL, or of HTML holding one, made with the visit number _STAND_IN: the
    visit's number goes between them. The last "/<number>/" is the visit's: the trial key before
    it may be any slug, digits included, and what follows it starts with a letter."""
    head, _sep, tail = text.rpartition(f"/{_STAND_IN}/")
    return f"{head}/", f"/{tail}"


class _WorklistForms:
    """The forms of worklist rows, as list items: each one's name, whether it is in, and a link
    to the entry page where the user may enter it (none where they may not: the gate's
    may_enter decides).

    A full worklist lists about 1,500 forms, so what is the same for many is worked out once
    per page: the gate's answers (access.EntryRights: once per site, kind of rater and
    disclosure), each form's item per instrument, state and kind of entry, and each row's
    items per timepoint, forms in and answers, escaped once with a stand-in for the visit's
    number that is replaced after. Rendered by the template's loop, the items took most of the
    page's CPU (bench/load.py: 170 ms a page)."""

    def __init__(self, user, trial):
        self.trial = trial
        self.may_enter = access.EntryRights(user)
        self.instruments = {}
        self.raters = {}
        self.items = {}
        self.lists = {}
        self.words = {True: _("entered"), False: _("to enter")}

    def __call__(self, visit, done):
        """The list items of the visit's forms (`done`: the codes in), HTML, escaped.

        Rows alike in their timepoint, the forms in and the gate's answers for the participant
        (most rows of a worklist) share their items, made once as the parts between which the
        visit's number goes."""
        timepoint, participant = visit.timepoint, visit.participant
        raters = self.raters_of(timepoint)
        allowed = tuple(self.may_enter(participant, rater) for rater in raters)
        key = (timepoint.pk, frozenset(done), allowed)
        if key not in self.lists:
            may = dict(zip(raters, allowed, strict=True))
            parts = [""]
            for code in timepoint.instruments:
                rater, kind, name = self.instrument(code)
                if kind is not None and not may[rater]:
                    kind = None
                head, tail = self.item(code, name, code in done, kind)
                parts[-1] += head
                if kind is not None:
                    parts.append(tail)
            self.lists[key] = parts
        return str(int(visit.pk)).join(self.lists[key])

    def raters_of(self, timepoint):
        """The kinds of rater of the timepoint's forms that can be entered here."""
        if timepoint.pk not in self.raters:
            self.raters[timepoint.pk] = tuple(
                sorted(
                    {
                        rater
                        for rater, kind, _name in map(self.instrument, timepoint.instruments)
                        if kind is not None
                    }
                )
            )
        return self.raters[timepoint.pk]

    def instrument(self, code):
        """(its rater, the kind of entry it takes, its name), or (None, None, code) when it is
        no longer installed: its code is shown, with nothing to enter."""
        if code not in self.instruments:
            try:
                instrument = registry.get(code)
            except KeyError:
                self.instruments[code] = (None, None, code)
            else:
                self.instruments[code] = (
                    instrument.rater,
                    services.entry_kind_for(instrument),
                    instrument.name,
                )
        return self.instruments[code]

    def item(self, code, name, done, kind):
        """(head, tail) of the item linking to the entry page of `kind` (the visit's number goes
        between them), or (item, "") where there is no link."""
        key = (code, done, kind)
        if key not in self.items:
            badge = format_html(
                '<span class="badge {}">{}</span>',
                "text-bg-success" if done else "text-bg-light border",
                self.words[done],
            )
            if kind is None:
                self.items[key] = (format_html("<li>{} {}</li>", shown(name), badge), "")
            else:
                url = reverse("assessments:entry", args=[self.trial.key, _STAND_IN, code, kind])
                item = format_html('<li><a href="{}">{}</a> {}</li>', url, shown(name), badge)
                self.items[key] = _around_the_visit(item)
        return self.items[key]


class _WorklistRows:
    """The worklist's table rows, as HTML: built here rather than by the template, whose nodes
    cost most of a full worklist's CPU (100 rows: a date filter, a URL and a translation each,
    bench/load.py). What many rows share is worked out once per page: the column words, each
    visit's label, date and status badge, and the visit page's URL around the visit's number."""

    def __init__(self, trial):
        self.words = [
            escape(word)
            for word in (
                _("Participant"),
                _("Visit"),
                _("Window"),
                _("Status"),
                _("Forms"),
                _("needs another assessor"),
            )
        ]
        head, tail = _around_the_visit(reverse("assessments:visit", args=[trial.key, _STAND_IN]))
        self.visit_url = (escape(head), escape(tail))
        self.labels, self.dates, self.badges = {}, {}, {}

    def __call__(self, visit, status, forms):
        """One row: `forms` is the row's list items, already escaped (_WorklistForms). The
        column words, labels, dates and badges are escaped once, when first made; the row's
        own values here (an f-string, where format_html took 80 µs a row)."""
        participant_word, visit_word, window_word, status_word, forms_word, reassign = self.words
        participant = visit.participant
        head, tail = self.visit_url
        label = self.label(visit.timepoint)
        if visit.needs_reassignment:
            label = f'{label} <span class="badge text-bg-warning">{reassign}</span>'
        return mark_safe(  # every value escaped: here, or when first made (see above)
            "<tr>"
            f'<td data-label="{participant_word}"><a href="{head}{int(visit.pk)}{tail}">'
            f"{escape(participant.participant_id)}</a> "
            f'<span class="text-body-secondary small">{escape(participant.site.name)}</span></td>'
            f'<td data-label="{visit_word}">{label}</td>'
            f'<td data-label="{window_word}">{self.date(visit.window_start)} – '
            f"{self.date(visit.window_end)}</td>"
            f'<td data-label="{status_word}">{self.badge(status)}</td>'
            f'<td data-label="{forms_word}" class="small">'
            f'<ul class="list-unstyled mb-0 worklist-forms">{forms}</ul></td>'
            "</tr>"
        )

    def label(self, timepoint):
        if timepoint.pk not in self.labels:
            self.labels[timepoint.pk] = escape(timepoint.display_label)
        return self.labels[timepoint.pk]

    def date(self, day):
        if day not in self.dates:
            self.dates[day] = escape(date_format(day, "SHORT_DATE_FORMAT"))
        return self.dates[day]

    def badge(self, status):
        if status not in self.badges:
            colour = {"overdue": "text-bg-danger", "open": "text-bg-primary"}.get(
                status, "text-bg-secondary"
            )
            self.badges[status] = format_html(
                '<span class="badge {}">{}</span>', colour, _(status.label).lower()
            )
        return self.badges[status]


# The visit with its participant, their site and trial, its timepoint and assessor, in one
# statement written once per process (imrtrial.rowloader): the visit page, the entry page and
# every save read it, and compiling the queryset cost more CPU than the rest of reading it.
_VISIT = RowLoader(
    Visit,
    related=("participant", "participant__site", "participant__trial", "timepoint", "assessor"),
    where=("pk", "participant__trial__key"),
)


def _visit_or_404(request, trial_key, visit_pk):
    """(trial, visit) read in one query, if the user may see the visit's participant or enter
    its forms; else 404. The trial needs no query of its own (trial_or_404): a user with no
    active role in it holds no permission in it either, so the answer is the same 404."""
    visit = _VISIT.get(pk=visit_pk, participant__trial__key=trial_key)
    if visit is None:
        raise Http404(_("Not found."))
    trial, site = visit.participant.trial, visit.participant.site
    if not any(
        access.has(request.user, perm, trial, site)
        for perm in (Perm.VIEW_PARTICIPANTS, Perm.ENTER_INTERVIEW, Perm.ENTER_STAFF_RATING)
    ):
        raise Http404(_("Not found."))
    return trial, visit


@login_required
def visit_detail(request, trial_key, visit_pk):
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    participant = visit.participant
    read = list(FormEntry.objects.filter(participant=participant, timepoint=visit.timepoint.code))
    entries = {}
    for e in read:
        entries.setdefault(e.instrument, {})[e.kind] = e
    forms = []
    for code in visit.timepoint.instruments:
        instrument = registry.get(code)
        kinds = entries.get(code, {})
        counted = kinds.get("final") or kinds.get("single")
        forms.append(
            {
                "instrument": instrument,
                "may_enter": access.may_enter(request.user, participant, instrument.rater),
                "double": services.entry_kind_for(instrument) == FormEntry.Kind.FIRST,
                "first": kinds.get("first"),
                "second": kinds.get("second"),
                "counted": counted,
            }
        )
    may_verify = access.has(request.user, Perm.VERIFY_FORMS, trial, participant.site)
    # The visit's queries are on its participant: the rows already read are set on each,
    # rather than joined again.
    visit_queries = []
    for q in visit.queries.select_related("entry").order_by("opened_at", "pk"):
        q.visit = visit
        if q.participant_id == participant.pk:  # as open_query writes it; else read as stored
            q.participant = participant
        if queries.may_see(request.user, q):
            visit_queries.append(q)
    waiting = {}
    for q in visit_queries:
        if q.entry_id and q.status in DataQuery.WAITING:
            waiting[q.entry_id] = waiting.get(q.entry_id, 0) + 1
    for f in forms:
        f["open_queries"] = waiting.get(f["counted"].pk, 0) if f["counted"] else 0
    assessors = []
    if may_verify:
        assessors = [
            u
            for u in _assessors_of(trial, participant)
            if access.may_enter(u, participant, "assessor_interview")
        ]
    return render(
        request,
        "assessments/visit_detail.html",
        {
            "trial": trial,
            "visit": visit,
            "forms": forms,
            "entries": read,  # the self-report panel's too
            "today": timezone.localdate(),
            "may_verify": may_verify,
            "may_ask": queries.may_open(request.user, participant),
            "may_source_verify": access.may_source_verify(request.user, participant),
            "visit_queries": visit_queries,
            "assessors": assessors,
            "missed_because": [
                c for c in Visit.MissedBecause.choices if c[0] != Visit.MissedBecause.DIED
            ],
            "may_guess": visit.timepoint.ask_blinding_guess
            and access.may_enter(request.user, participant, "assessor_interview"),
            "guesses": Visit.Guess.choices,
        },
    )


@login_required
def entry_form(request, trial_key, visit_pk, instrument, kind):
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    try:
        definition = registry.get(instrument)
    except KeyError:
        raise Http404(_("No such instrument.")) from None
    if kind not in FormEntry.Kind.values or kind == FormEntry.Kind.FINAL:
        raise Http404(_("Not found."))
    if instrument not in visit.timepoint.instruments or not access.may_enter(
        request.user, visit.participant, definition.rater
    ):
        raise Http404(_("Not found."))
    this_form = FormEntry.objects.filter(
        participant=visit.participant,
        instrument=instrument,
        timepoint=visit.timepoint.code,
        kind=kind,
    )
    # A single entry posted is read by the save itself (under its row lock); the page reads it
    # only to show it. Double entry is checked before anything is typed or saved.
    entry = None if request.method == "POST" and kind == "single" else this_form.first()
    if kind in ("first", "second") and entry and entry.entered_by_id != request.user.pk:
        # Double entry is independent: nobody sees the other entry's values.
        messages.error(request, _("This entry was made by someone else."))
        return redirect("assessments:visit", trial.key, visit.pk)
    if kind == FormEntry.Kind.SECOND and entry is None:
        # Refused before anything is typed, as the service would refuse it at save.
        first = FormEntry.objects.filter(
            participant=visit.participant,
            instrument=instrument,
            timepoint=visit.timepoint.code,
            kind=FormEntry.Kind.FIRST,
        ).first()
        if first is None or first.entered_by_id == request.user.pk:
            messages.error(
                request,
                _(
                    "The second entry must be made by someone other than the first, "
                    "after the first entry."
                )
                if first is None
                else _(
                    "The second entry must be made by someone other than the first: "
                    "you made the first."
                ),
            )
            return redirect("assessments:visit", trial.key, visit.pk)
    errors, raw, reason_error, warnings = {}, {}, False, []
    if request.method == "POST":
        raw = {i.code: request.POST.get(f"item_{i.code}", "") for i in definition.items}
        extra = [k[5:] for k in request.POST if k.startswith("item_") and k[5:] not in raw]
        raw.update({k: request.POST[f"item_{k}"] for k in extra})
        try:
            entry = services.save_entry(
                visit,
                instrument,
                raw,
                by=request.user,
                kind=kind,
                version=request.POST.get("version") or None,
                complete="complete" in request.POST,
                reason=request.POST.get("reason", ""),
                # The page shows the data quality rules' warnings; saved once acknowledged.
                acknowledge="acknowledge" in request.POST,
            )
        except services.FormInvalid as exc:
            errors = exc.errors
        except services.NeedsAcknowledgement as exc:
            warnings = exc.findings
        except (services.Conflict, ReasonRequired, Refused) as exc:
            errors = {"__all__": exc.messages[0] if isinstance(exc, ReasonRequired) else str(exc)}
            reason_error = isinstance(exc, ReasonRequired)
        else:
            if entry.status == FormEntry.Status.DRAFT:
                messages.success(request, _("Draft saved."))
                return redirect(request.path)
            messages.success(request, _("%(name)s is complete.") % {"name": definition.name})
            return redirect("assessments:visit", trial.key, visit.pk)
        if entry is None:
            entry = this_form.first()  # the page comes back: as the form stands now
    elif entry:
        raw = {k: shown_value(v) for k, v in entry.values.items()}
    form_queries, item_queries = [], {}
    if entry is not None:
        form_queries = list(
            entry.queries.select_related(
                "participant", "participant__site", "participant__trial", "visit", "entry"
            ).order_by("opened_at", "pk")
        )
        for q in form_queries:
            if q.item and q.status in DataQuery.WAITING:
                item_queries.setdefault(q.item, []).append(q)
    return render(
        request,
        "assessments/entry_form.html",
        {
            "trial": trial,
            "visit": visit,
            "instrument": definition,
            "entry": entry,
            "kind": kind,
            "raw": raw,
            "errors": errors,
            "form_error": errors.get("__all__"),
            "item_errors": len([k for k in errors if k != "__all__"]),
            # The focus goes to the first wrong item (no script: the autofocus attribute).
            "first_error": next((i.code for i in definition.items if i.code in errors), None),
            "reason_error": reason_error,
            "locked": entry is not None and entry.status == FormEntry.Status.LOCKED,
            "needs_reason": entry is not None and entry.status != FormEntry.Status.DRAFT,
            "scores": entry.scores if entry and entry.status != FormEntry.Status.DRAFT else None,
            "score_defs": definition.scores,
            "form_queries": [
                (q, queries.thread_for(request.user, q), queries.may_answer(request.user, q))
                for q in form_queries
            ],
            "item_queries": item_queries,
            "warnings": warnings,
            "item_warnings": _by_item(warnings),
        },
    )


def _by_item(findings):
    """{item code: [finding]} for the warnings shown beside the items."""
    by_item = {}
    for finding in findings:
        for code in finding.items:
            by_item.setdefault(code, []).append(finding)
    return by_item


@login_required
def entry_status(request, trial_key, visit_pk, entry_pk):
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    access.require(request.user, Perm.VERIFY_FORMS, trial, visit.participant.site)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    entry = get_object_or_404(FormEntry, pk=entry_pk, participant=visit.participant)
    try:
        entry = services.set_status(entry, request.POST.get("status", ""), by=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        installed = registry.all_instruments().get(entry.instrument)
        name = shown(installed.name) if installed else entry.instrument
        messages.success(
            request,
            _("%(name)s at %(visit)s is %(status)s.")
            % {
                "name": name,
                "visit": visit.timepoint.display_label,
                "status": _(entry.get_status_display()).lower(),
            },
        )
    return redirect("assessments:visit", trial.key, visit.pk)


@login_required
def reconcile(request, trial_key, visit_pk, instrument):
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    access.require(request.user, Perm.VERIFY_FORMS, trial, visit.participant.site)
    try:
        definition = registry.get(instrument)
    except KeyError:
        raise Http404(_("No such instrument.")) from None
    diffs = services.discrepancies(visit.participant, instrument, visit.timepoint.code)
    if diffs is None:
        messages.error(request, _("Both entries must be complete before they are reconciled."))
        return redirect("assessments:visit", trial.key, visit.pk)
    errors = {}
    if request.method == "POST":
        chosen = {code: request.POST.get(f"value_{code}", "") for code, _, _ in diffs}
        reasons = {code: request.POST.get(f"reason_{code}", "") for code, _, _ in diffs}
        try:
            services.reconcile(visit, instrument, chosen, by=request.user, reasons=reasons)
        except services.FormInvalid as exc:
            errors = exc.errors
        except Refused as exc:
            errors = {"__all__": str(exc)}
        else:
            messages.success(request, _("%(name)s reconciled.") % {"name": definition.name})
            return redirect("assessments:visit", trial.key, visit.pk)
    rows = [
        {
            "item": definition.item(code),
            "first": shown_value(a),
            "second": shown_value(b),
            "error": errors.get(code),
            "value": request.POST.get(f"value_{code}", ""),
            "reason": request.POST.get(f"reason_{code}", ""),
        }
        for code, a, b in diffs
    ]
    return render(
        request,
        "assessments/reconcile.html",
        {
            "trial": trial,
            "visit": visit,
            "instrument": definition,
            "rows": rows,
            "form_error": errors.get("__all__"),
        },
    )


@login_required
def visit_manage(request, trial_key, visit_pk):
    """Data manager: assign an assessor, or mark the visit missed."""
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    access.require(request.user, Perm.VERIFY_FORMS, trial, visit.participant.site)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        if request.POST.get("action") == "missed":
            services.mark_missed(
                visit,
                by=request.user,
                reason=request.POST.get("reason", ""),
                because=request.POST.get("because", ""),
            )
            messages.success(request, _("The visit is marked missed."))
        else:
            try:
                assessor_pk = int(request.POST.get("assessor", ""))
            except ValueError:
                raise Refused(_("Choose the assessor.")) from None
            assessor = get_object_or_404(get_user_model(), pk=assessor_pk)
            services.assign_assessor(visit, assessor, by=request.user)
            messages.success(request, _("Assigned to %(assessor)s.") % {"assessor": assessor})
    except Refused as exc:
        messages.error(request, str(exc))
    return redirect("assessments:visit", trial.key, visit.pk)


@login_required
def guess(request, trial_key, visit_pk):
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    if not access.may_enter(request.user, visit.participant, "assessor_interview"):
        raise Http404(_("Not found."))
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        services.record_guess(visit, request.POST.get("guess", ""), by=request.user)
        messages.success(request, _("Guess recorded."))
    except Refused as exc:
        messages.error(request, str(exc))
    return redirect("assessments:visit", trial.key, visit.pk)


def _assessors_of(trial, participant):
    return (
        get_user_model()
        .objects.filter(
            memberships__trial=trial,
            memberships__role=Role.ASSESSOR,
            memberships__active=True,
        )
        .filter(Q(memberships__site=participant.site_id) | Q(memberships__site__isnull=True))
        .distinct()
        .order_by("username")
    )


@login_required
def incident_new(request, trial_key, participant_id):
    """Anyone who may see the participant records that they disclosed their allocation to an
    assessor."""
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    form = IncidentForm(_post(request), assessors=_assessors_of(trial, participant))
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            services.record_unblinding(
                participant,
                d["assessor"],
                by=request.user,
                occurred_on=d["occurred_on"],
                description=d["description"],
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _(
                    "Recorded. That assessor can no longer rate this participant; open "
                    "visits are flagged for another blinded assessor."
                ),
            )
            return redirect("assessments:participant_detail", trial.key, participant.participant_id)
    return render(
        request,
        "assessments/incident_form.html",
        {
            "trial": trial,
            "participant": participant,
            "form": form,
        },
    )


@login_required
def reminder_list(request, trial_key):
    """Reminders sent and pending at the user's sites, for coordinators and data managers."""
    trial = access.trial_or_404(request.user, trial_key)
    sites = access.sites_where(request.user, Perm.RANDOMIZE, trial) | access.sites_where(
        request.user, Perm.VERIFY_FORMS, trial
    )
    if not sites.exists():
        raise Http404(_("Not found."))
    lines = (
        Reminder.objects.filter(visit__participant__trial=trial, visit__participant__site__in=sites)
        .select_related("recipient", "visit__participant", "visit__timepoint")
        .order_by("-day", "sent_at", "recipient__username")
    )
    failing = lines.filter(sent_at__isnull=True, dropped_at__isnull=True, attempts__gt=0)
    return render(
        request,
        "assessments/reminder_list.html",
        {
            "trial": trial,
            "lines": lines[:300],
            "pending": lines.filter(sent_at__isnull=True, dropped_at__isnull=True).count(),
            "failing": failing.count(),
            "last_error": failing.exclude(last_error="")
            .values_list("last_error", flat=True)
            .first(),
        },
    )


# --- Data queries ------------------------------------------------------------------------------

QUERY_ACTIONS = {  # button value: (service, button label)
    QueryMessage.Action.CLOSE: (queries.close_query, gettext_lazy("Close")),
    QueryMessage.Action.REOPEN: (queries.reopen_query, gettext_lazy("Re-open")),
    QueryMessage.Action.CANCEL: (queries.cancel_query, gettext_lazy("Cancel the query")),
}
QUERY_LIST_ROWS = 200


def _query_or_404(request, trial, query_pk):
    """The query, if the user may see its thread (the site's data managers, whoever may
    answer it); else 404, so its existence is not revealed."""
    query = get_object_or_404(
        DataQuery.objects.select_related(
            "participant",
            "participant__site",
            "participant__trial",
            "visit",
            "visit__timepoint",
            "entry",
            "addressed_to",
        ),
        pk=query_pk,
        participant__trial=trial,
    )
    if not queries.may_see(request.user, query):
        raise Http404(_("Not found."))
    return query


def _item_of(query):
    if not (query.entry_id and query.item):
        return None
    try:
        return registry.get(query.entry.instrument).item(query.item)
    except KeyError:
        return None


def _entry_values(user, entry):
    """[(item, value as the user may read it)] of a form, for a data manager choosing an item:
    free text an unblinded author wrote shows only as "text exists"."""
    instrument = registry.get(entry.instrument)
    participant = entry.participant
    free_text = registry.unexported_items(entry.instrument, entry.values)
    rows = []
    for item in instrument.items:
        value = shown_value(entry.values.get(item.code))
        if item.code in free_text:
            value = access.text_for(
                user, value, entry.entered_by, participant.trial, participant.site
            )
        rows.append((item, value))
    return rows


@login_required
def query_new(request, trial_key, visit_pk):
    """A data manager asks about the visit, one of its forms (?entry=) or an item (&item=)."""
    trial, visit = _visit_or_404(request, trial_key, visit_pk)
    participant = visit.participant
    if not queries.may_open(request.user, participant):
        raise Http404(_("Not found."))
    params = request.POST if request.method == "POST" else request.GET
    entry, item = None, params.get("item", "")
    if params.get("entry"):
        try:
            entry = FormEntry.objects.get(pk=int(params["entry"]), visit=visit)
        except (ValueError, FormEntry.DoesNotExist):
            raise Http404(_("Not found.")) from None
        try:
            definition = registry.get(entry.instrument)
        except KeyError:
            raise Http404(_("No such instrument.")) from None
        if item and item not in {i.code for i in definition.items}:
            raise Http404(_("No such item."))
    elif item:
        raise Http404(_("Not found."))
    form = QueryForm(_post(request))
    if request.method == "POST" and form.is_valid():
        try:
            query = queries.open_query(
                visit,
                entry,
                item,
                by=request.user,
                category=form.cleaned_data["category"],
                text=form.cleaned_data["text"],
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Query #%(number)s opened.") % {"number": query.pk})
            return redirect("assessments:query", trial.key, query.pk)
    item_queries = {}
    if entry is not None:
        for q in DataQuery.objects.filter(entry=entry).exclude(item=""):
            item_queries.setdefault(q.item, []).append(q)
    return render(
        request,
        "assessments/query_form.html",
        {
            "trial": trial,
            "visit": visit,
            "entry": entry,
            "item": registry.get(entry.instrument).item(item) if entry and item else None,
            "values": _entry_values(request.user, entry) if entry and not item else [],
            "item_queries": item_queries,
            "form": form,
        },
    )


def _query_page(request, trial, query, answer_form=None, action_form=None, status=200):
    user = request.user
    item = _item_of(query)
    may_answer = query.status == DataQuery.Status.OPEN and queries.may_answer(user, query)
    if may_answer and answer_form is None:
        current = shown_value(query.entry.values.get(item.code)) if item else ""
        answer_form = AnswerForm(
            item=item,
            current=current,
            initial={"version": query.entry.version if query.entry_id else None},
        )
    may_manage = queries.may_act(user, query)
    trial_, site = query.participant.trial, query.participant.site
    return render(
        request,
        "assessments/query_detail.html",
        {
            "trial": trial,
            "query": query,
            "visit": query.visit,
            "item": item,
            "thread": queries.thread_for(user, query),
            "addressee": access.author_label(user, query.addressed_to, trial_, site)
            if query.addressed_to_id
            else "the site's assessors",
            "answer_form": answer_form if may_answer else None,
            "action_form": (action_form or QueryActionForm()) if may_manage else None,
            "actions": [
                (action, QUERY_ACTIONS[action][1])
                for action, (starts, _) in queries.TRANSITIONS.items()
                if action in QUERY_ACTIONS and query.status in starts
            ]
            if may_manage
            else [],
            "age": queries.age_days(query),
        },
        status=status,
    )


@login_required
def query_detail(request, trial_key, query_pk):
    trial = access.trial_or_404(request.user, trial_key)
    query = _query_or_404(request, trial, query_pk)
    return _query_page(request, trial, query)


@login_required
def query_answer(request, trial_key, query_pk):
    trial = access.trial_or_404(request.user, trial_key)
    query = _query_or_404(request, trial, query_pk)
    if not queries.may_answer(request.user, query):
        raise Http404(_("Not found."))
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    item = _item_of(query)
    current = shown_value(query.entry.values.get(item.code)) if item else ""
    form = AnswerForm(request.POST, item=item, current=current)
    if form.is_valid():
        d = form.cleaned_data
        values = {item.code: d["value"]} if item and d.get("value", "").strip() else None
        try:
            queries.answer_query(
                query, by=request.user, text=d["text"], values=values, version=d.get("version")
            )
        except services.FormInvalid as exc:
            form.add_error("value" if item else None, "; ".join(exc.errors.values()))
        except (services.Conflict, ReasonRequired, Refused) as exc:
            form.add_error(None, exc.messages[0] if isinstance(exc, ReasonRequired) else str(exc))
        else:
            messages.success(request, _("Query #%(number)s answered.") % {"number": query.pk})
            return redirect("assessments:query", trial.key, query.pk)
    return _query_page(request, trial, query, answer_form=form)


@login_required
def query_act(request, trial_key, query_pk):
    """A data manager closes, re-opens or cancels (the button pressed), with a message."""
    trial = access.trial_or_404(request.user, trial_key)
    query = _query_or_404(request, trial, query_pk)
    if not queries.may_act(request.user, query):
        raise Http404(_("Not found."))
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = QueryActionForm(request.POST)
    act, _label = QUERY_ACTIONS.get(request.POST.get("action"), (None, ""))
    if form.is_valid():
        if act is None:
            form.add_error(None, _("Choose close, re-open or cancel."))
        else:
            try:
                act(query, by=request.user, text=form.cleaned_data["text"])
            except Refused as exc:
                form.add_error(None, str(exc))
            else:
                query.refresh_from_db(fields=["status"])
                messages.success(
                    request,
                    _("Query #%(number)s %(status)s.")
                    % {"number": query.pk, "status": query.get_status_display().lower()},
                )
                return redirect("assessments:query", trial.key, query.pk)
    return _query_page(request, trial, query, action_form=form)


@login_required
def query_list(request, trial_key):
    """The queries at the sites of a data manager or monitor, filtered by site and status."""
    trial = access.trial_or_404(request.user, trial_key)
    sites = access.query_sites(request.user, trial).order_by("name")
    if not sites.exists():
        raise Http404(_("Not found."))
    rows = DataQuery.objects.filter(participant__trial=trial, participant__site__in=sites)
    site = request.GET.get("site", "")
    if site:
        rows = rows.filter(participant__site__pk=site if site.isdigit() else None)
    status = request.GET.get("status", "waiting")
    if status == "waiting":
        rows = rows.filter(status__in=DataQuery.WAITING)
    elif status in DataQuery.Status.values:
        rows = rows.filter(status=status)
    else:
        status = ""
    rows = rows.select_related(
        "participant", "participant__site", "visit__timepoint", "entry"
    ).order_by("opened_at", "pk")
    total = rows.count()
    today = timezone.localdate()
    return render(
        request,
        "assessments/query_list.html",
        {
            "trial": trial,
            "rows": [(q, queries.age_days(q, today)) for q in rows[:QUERY_LIST_ROWS]],
            "total": total,
            "sites": sites,
            "site": site,
            "status": status,
            "statuses": [
                ("waiting", _("Open or answered")),
                *DataQuery.Status.choices,
                ("", _("All")),
            ],
        },
    )
