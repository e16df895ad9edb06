"""The participant's case file, the assessor's worklist and CRF entry.

Pages shared by blinded and unblinded roles: allocation data appears here only after
imrtrial.access says the user may see it, and nothing listed here differs by arm.
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from imrtrial import access
from imrtrial.audit import ReasonRequired, log_access
from imrtrial.errors import Refused
from imrtrial.models import AccessLog, Perm, Role
from randomization.models import Withdrawal
from randomization.services import allocation_of

from . import registry, services
from .forms import IncidentForm, WithdrawalForm
from .models import FormEntry, Reminder, Visit

WORKLIST_ROWS = 100  # the soonest deadlines; the count of the rest is shown


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
        "may_lock": access.has(request.user, Perm.VERIFY_FORMS, trial, participant.site),
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
        raise Http404("Not found.")
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
            messages.success(request, "Withdrawal recorded.")
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
    if not sites.exists():
        raise Http404("Not found.")
    today = timezone.localdate()
    visits = (
        Visit.objects.due(today)
        .filter(participant__trial=trial, participant__site__in=sites)
        .exclude(participant__status="withdrawn")
        .filter(Q(assessor=request.user) | Q(assessor__isnull=True))
        .select_related("participant", "participant__site", "timepoint")
        .prefetch_related(
            Prefetch(
                "entries",
                queryset=FormEntry.objects.counting().only("visit_id", "instrument"),
            )
        )
        .order_by("window_end", "participant__participant_id")
    )
    total = visits.count()
    visits = visits[:WORKLIST_ROWS]
    rows = []
    for visit in visits:
        done = {e.instrument for e in visit.entries.all()}
        rows.append(
            {
                "visit": visit,
                "status": visit.status(today),
                "forms": [(code, code in done) for code in visit.timepoint.instruments],
            }
        )
    return render(
        request,
        "assessments/worklist.html",
        {
            "trial": trial,
            "rows": rows,
            "today": today,
            "total": total,
        },
    )


def _visit_or_404(request, trial, visit_pk):
    """The visit, if the user may see its participant or enter its forms; else 404."""
    visit = get_object_or_404(
        Visit.objects.select_related(
            "participant", "participant__site", "participant__trial", "timepoint", "assessor"
        ),
        pk=visit_pk,
        participant__trial=trial,
    )
    site = visit.participant.site
    if not any(
        access.has(request.user, perm, trial, site)
        for perm in (Perm.VIEW_PARTICIPANTS, Perm.ENTER_INTERVIEW, Perm.ENTER_STAFF_RATING)
    ):
        raise Http404("Not found.")
    return visit


@login_required
def visit_detail(request, trial_key, visit_pk):
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request, trial, visit_pk)
    participant = visit.participant
    entries = {}
    for e in FormEntry.objects.filter(participant=participant, timepoint=visit.timepoint.code):
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
            "today": timezone.localdate(),
            "may_verify": may_verify,
            "assessors": assessors,
            "may_guess": visit.timepoint.ask_blinding_guess
            and access.may_enter(request.user, participant, "assessor_interview"),
            "guesses": Visit.Guess.choices,
        },
    )


@login_required
def entry_form(request, trial_key, visit_pk, instrument, kind):
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request, trial, visit_pk)
    try:
        definition = registry.get(instrument)
    except KeyError:
        raise Http404("No such instrument.") from None
    if kind not in FormEntry.Kind.values or kind == FormEntry.Kind.FINAL:
        raise Http404("Not found.")
    if instrument not in visit.timepoint.instruments or not access.may_enter(
        request.user, visit.participant, definition.rater
    ):
        raise Http404("Not found.")
    entry = FormEntry.objects.filter(
        participant=visit.participant,
        instrument=instrument,
        timepoint=visit.timepoint.code,
        kind=kind,
    ).first()
    if kind in ("first", "second") and entry and entry.entered_by_id != request.user.pk:
        # Double entry is independent: nobody sees the other entry's values.
        messages.error(request, "This entry was made by someone else.")
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
                "The second entry must be made by someone other than the first"
                + (", after the first entry." if first is None else ": you made the first."),
            )
            return redirect("assessments:visit", trial.key, visit.pk)
    errors, raw, reason_error = {}, {}, False
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
            )
        except services.FormInvalid as exc:
            errors = exc.errors
        except (services.Conflict, ReasonRequired, Refused) as exc:
            errors = {"__all__": exc.messages[0] if isinstance(exc, ReasonRequired) else str(exc)}
            reason_error = isinstance(exc, ReasonRequired)
        else:
            if entry.status == FormEntry.Status.DRAFT:
                messages.success(request, "Draft saved.")
                return redirect(request.path)
            messages.success(request, f"{definition.name} is complete.")
            return redirect("assessments:visit", trial.key, visit.pk)
    elif entry:
        raw = {k: services._as_text(v) for k, v in entry.values.items()}
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
        },
    )


@login_required
def entry_status(request, trial_key, visit_pk, entry_pk):
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request, trial, visit_pk)
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
        name = installed.name if installed else entry.instrument
        messages.success(
            request,
            f"{name} at {visit.timepoint.label} is {entry.get_status_display().lower()}.",
        )
    return redirect("assessments:visit", trial.key, visit.pk)


@login_required
def reconcile(request, trial_key, visit_pk, instrument):
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request, trial, visit_pk)
    access.require(request.user, Perm.VERIFY_FORMS, trial, visit.participant.site)
    try:
        definition = registry.get(instrument)
    except KeyError:
        raise Http404("No such instrument.") from None
    diffs = services.discrepancies(visit.participant, instrument, visit.timepoint.code)
    if diffs is None:
        messages.error(request, "Both entries must be complete before they are reconciled.")
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
            messages.success(request, f"{definition.name} reconciled.")
            return redirect("assessments:visit", trial.key, visit.pk)
    rows = [
        {
            "item": definition.item(code),
            "first": services._as_text(a),
            "second": services._as_text(b),
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
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request, trial, visit_pk)
    access.require(request.user, Perm.VERIFY_FORMS, trial, visit.participant.site)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        if request.POST.get("action") == "missed":
            services.mark_missed(visit, by=request.user, reason=request.POST.get("reason", ""))
            messages.success(request, "The visit is marked missed.")
        else:
            try:
                assessor_pk = int(request.POST.get("assessor", ""))
            except ValueError:
                raise Refused("Choose the assessor.") from None
            assessor = get_object_or_404(get_user_model(), pk=assessor_pk)
            services.assign_assessor(visit, assessor, by=request.user)
            messages.success(request, f"Assigned to {assessor}.")
    except Refused as exc:
        messages.error(request, str(exc))
    return redirect("assessments:visit", trial.key, visit.pk)


@login_required
def guess(request, trial_key, visit_pk):
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request, trial, visit_pk)
    if not access.may_enter(request.user, visit.participant, "assessor_interview"):
        raise Http404("Not found.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        services.record_guess(visit, request.POST.get("guess", ""), by=request.user)
        messages.success(request, "Guess recorded.")
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
                "Recorded. That assessor can no longer rate this participant; open "
                "visits are flagged for another blinded assessor.",
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
        raise Http404("Not found.")
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
