"""The phone desk: screen, enrol and randomize while the caller waits; look up one allocation;
and, for the key holder only, the allocations of each stratum in order.

Every page here is unblinded. Each one asks imrtrial.access first and answers 404 to anyone else.
Site staff see one participant at a time, never a stratum's arms in order or block sizes: with
those a recruiter guesses the next allocation more often than chance.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F, Q, Value
from django.db.models.functions import Replace
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from imrtrial import access
from imrtrial.audit import log_access
from imrtrial.forms import unbound_rendering_key
from imrtrial.i18n_text import level_label
from imrtrial.models import AccessLog, Perm
from imrtrial.rowloader import RowLoader

from . import services
from .forms import (
    ConsentForm,
    EnrolForm,
    InErrorForm,
    ListUploadForm,
    RandomizeForm,
    ScreeningForm,
)
from .listing import ListError, import_list
from .models import Allocation, Screening


def _desk_trial(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, Perm.RANDOMIZE, trial)
    return trial


# The screening with its site, participant and identifying details, by SQL written once per
# process (imrtrial.rowloader): the screening page and every post to it read it, and compiling
# the queryset cost more CPU than running it.
_SCREENING = RowLoader(
    Screening,
    related=("site", "participant", "identifying"),
    where=("trial", "screening_number"),
)


def _screening_or_404(request, trial, number):
    """The trial's screening of this number, if the user may randomize at its site; else 404,
    the same for one that does not exist."""
    screening = _SCREENING.get(trial=trial.pk, screening_number=number)
    if screening is None or not access.has(request.user, Perm.RANDOMIZE, trial, screening.site):
        raise Http404(_("Not found."))
    screening.trial = trial
    return screening


@login_required
def desk(request, trial_key):
    trial = _desk_trial(request, trial_key)
    sites = access.sites_where(request.user, Perm.RANDOMIZE, trial)
    screenings = Screening.objects.filter(trial=trial, site__in=sites).select_related(
        "site", "participant"
    )
    query = request.GET.get("q", "").strip()[:100]
    identifying_sites = access.sites_where(request.user, Perm.VIEW_IDENTIFYING, trial)
    may_search_identifying = identifying_sites.exists()
    if query:
        by_id = Q(screening_number__iexact=query) | Q(participant__participant_id__iexact=query)
        found = list(screenings.filter(by_id)[:50])
        by_who = _identifying_match(query) if may_search_identifying and not found else None
        if by_who is not None:
            # A name or phone, looked up only where the gate lets this user see them, and only
            # when the query is no screening number or participant id; the rows shown are the
            # same columns as any other search, never the name or phone.
            found = list(
                screenings.annotate(
                    desk_phone_digits=_phone_digits(F("identifying__phone"))
                ).filter(Q(site__in=identifying_sites) & by_who)[:50]
            )
            if found:
                log_access(
                    request,
                    trial,
                    AccessLog.Action.VIEW_IDENTIFYING,
                    "desk search by name or phone: " + ", ".join(s.screening_number for s in found),
                )
    else:
        found = list(screenings[:50])
    return render(
        request,
        "randomization/desk.html",
        {
            "trial": trial,
            "screenings": found,
            "query": query,
            "may_search_identifying": may_search_identifying,
        },
    )


def _phone_digits(field):
    """The phone field without the separators people type (spaces, dashes, dots, brackets)."""
    expr = field
    for sep in (" ", "-", ".", "(", ")", "/"):
        expr = Replace(expr, Value(sep), Value(""))
    return expr


def _identifying_match(query):
    """The condition on a screening's identifying details that a desk search means: a part of
    the caller's name (two letters at least), or their phone number (six digits at least,
    separators ignored, a leading + kept as typed). None when the query can be neither."""
    conditions = Q()
    if len(query) >= 2 and any(ch.isalpha() for ch in query):
        conditions |= Q(identifying__full_name__icontains=query)
    digits = "".join(ch for ch in query if ch.isdigit() or ch == "+")
    if sum(ch.isdigit() for ch in digits) >= 6 and not any(ch.isalpha() for ch in query):
        conditions |= Q(desk_phone_digits__contains=digits)
    return conditions or None


@login_required
def screening_new(request, trial_key):
    trial = _desk_trial(request, trial_key)
    form = ScreeningForm(
        request.POST if request.method == "POST" else None,
        criteria=trial.criteria.all(),
        sites=access.sites_where(request.user, Perm.RANDOMIZE, trial),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            screening = services.screen(
                trial,
                data["site"],
                by=request.user,
                answers=form.answers(),
                screened_on=data["screened_on"],
                referral_source=data["referral_source"],
                full_name=data["full_name"],
                national_id=data["national_id"],
                phone=data["phone"],
                consent_date=data["consent_date"],
                consent_form_version=data["consent_form_version"],
                consent_obtained_by=data["consent_obtained_by"],
            )
        except services.Refused as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("randomization:screening", trial.key, screening.screening_number)
    fields_key = None if form.is_bound else unbound_rendering_key(form)
    return render(
        request,
        "randomization/screening_form.html",
        {"trial": trial, "form": form, "fields_key": fields_key},
    )


@login_required
def screening_detail(request, trial_key, number):
    trial = _desk_trial(request, trial_key)
    screening = _screening_or_404(request, trial, number)
    consent_form = enrol_form = None
    if request.method == "POST":
        try:
            if "consent" in request.POST:
                consent_form = ConsentForm(request.POST)
                if consent_form.is_valid():
                    d = consent_form.cleaned_data
                    services.record_consent(
                        screening,
                        by=request.user,
                        consent_date=d["consent_date"],
                        form_version=d["consent_form_version"],
                        obtained_by=d["consent_obtained_by"],
                    )
                    messages.success(request, _("Consent recorded."))
                    return redirect(request.path)
            elif "enrol" in request.POST:
                enrol_form = EnrolForm(request.POST, factors=trial.factors.all())
                if enrol_form.is_valid():
                    participant = services.enrol(
                        screening, by=request.user, factor_levels=enrol_form.levels()
                    )
                    return redirect(
                        "randomization:randomize", trial.key, participant.participant_id
                    )
        except services.Refused as exc:
            messages.error(request, str(exc))
            return redirect(request.path)
    if access.has(request.user, Perm.VIEW_IDENTIFYING, trial, screening.site):
        log_access(request, trial, AccessLog.Action.VIEW_IDENTIFYING, screening)
        identifying = getattr(screening, "identifying", None)
    else:
        identifying = None
    return render(
        request,
        "randomization/screening_detail.html",
        {
            "trial": trial,
            "screening": screening,
            "identifying": identifying,
            "consent_form": consent_form or ConsentForm(),
            "enrol_form": enrol_form or EnrolForm(factors=trial.factors.all()),
            "criteria": [(c, screening.answers.get(c.code)) for c in trial.criteria.all()],
        },
    )


def _desk_participant(request, trial, participant_id):
    participant = access.participant_or_404(request.user, trial, participant_id)
    access.require(request.user, Perm.RANDOMIZE, trial, participant.site)
    return participant


@login_required
def randomize(request, trial_key, participant_id):
    # The call the caller waits on: participant, trial and site in one prepared statement.
    participant = access.desk_participant_or_404(
        request.user, trial_key, participant_id, Perm.RANDOMIZE
    )
    trial = participant.trial
    if services.allocation_of(participant):
        return redirect("randomization:result", trial.key, participant.participant_id)
    needs_baseline = (
        trial.baseline_required_before_randomization and not participant.baseline_completed_on
    )
    form = RandomizeForm(
        request.POST if request.method == "POST" else None, needs_baseline=needs_baseline
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.randomize(
                participant,
                by=request.user,
                baseline_completed_on=form.cleaned_data.get("baseline_completed_on")
                if needs_baseline
                else None,
            )
        except services.Refused as exc:
            form.add_error(None, str(exc))
        else:
            # Post/redirect/get: a refresh of the result never posts again.
            return redirect("randomization:result", trial.key, participant.participant_id)
    factors = []
    for factor in trial.factors.all():
        if factor.from_site:
            factors.append((factor.display_label, participant.site.display_name))
        else:
            labels = {lv["code"]: level_label(lv) for lv in factor.levels}
            code = participant.factor_levels.get(factor.code)
            factors.append((factor.display_label, labels.get(code, _("— missing —"))))
    return render(
        request,
        "randomization/randomize.html",
        {
            "trial": trial,
            "participant": participant,
            "factors": factors,
            "form": form,
        },
    )


@login_required
def result(request, trial_key, participant_id):
    trial = _desk_trial(request, trial_key)
    participant = _desk_participant(request, trial, participant_id)
    access.require_allocation_access(request.user, trial, participant.site)
    allocation = services.allocation_of(participant)
    if allocation is None:
        return redirect("randomization:randomize", trial.key, participant.participant_id)
    log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, participant)
    return render(
        request,
        "randomization/result.html",
        {
            "trial": trial,
            "participant": participant,
            "allocation": allocation,
            "in_error_form": InErrorForm(),
        },
    )


@login_required
def mark_in_error(request, trial_key, participant_id):
    trial = _desk_trial(request, trial_key)
    participant = _desk_participant(request, trial, participant_id)
    if request.method != "POST":  # asked only after the gate, so a 405 reveals nothing
        return HttpResponseNotAllowed(["POST"])
    allocation = services.allocation_of(participant)
    form = InErrorForm(request.POST)
    if allocation is None:
        return redirect("randomization:randomize", trial.key, participant.participant_id)
    if form.is_valid():
        try:
            services.mark_in_error(allocation, by=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, _("The allocation is flagged as made in error."))
        except services.Refused as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("Give the reason the allocation was made in error."))
    return redirect("randomization:result", trial.key, participant.participant_id)


@login_required
def allocation_lookup(request, trial_key):
    """One participant's allocation, looked up by id, for staff unblinded at its site; 404 for
    everyone else. Never a list: the arms of a stratum in order let a recruiter guess the
    next one (the key holder's history is allocation_history)."""
    trial = access.trial_or_404(request.user, trial_key)
    access.require_allocation_access(request.user, trial)
    query = request.GET.get("participant", "").strip()
    allocation = None
    if query:
        participant = (
            access.participants_visible_to(request.user, trial)
            .filter(participant_id__iexact=query)
            .select_related("site")
            .first()
        )
        # Unknown, elsewhere, blinded there or not randomized: the same answer for all four.
        if participant and access.may_see_allocation(request.user, trial, participant.site):
            allocation = services.allocation_of(participant)
        if allocation:
            log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, participant)
    return render(
        request,
        "randomization/allocation_lookup.html",
        {
            "trial": trial,
            "query": query,
            "allocation": allocation,
            "may_see_history": _may_see_history(request.user, trial),
        },
    )


def _may_see_history(user, trial):
    return access.may_do_unblinded(user, Perm.RELEASE_ALLOCATION_KEY, trial)


@login_required
def allocation_history(request, trial_key):
    """The allocations of each stratum in slot order, for the key holder only (404 for everyone
    else, site staff included): the order is what makes the next allocation guessable."""
    trial = access.trial_or_404(request.user, trial_key)
    if not _may_see_history(request.user, trial):
        raise Http404(_("Not found."))
    sites = access.sites_where_unblinded(request.user, Perm.RELEASE_ALLOCATION_KEY, trial)
    allocations = (
        Allocation.objects.filter(trial=trial, participant__site__in=sites)
        .select_related("stratum", "participant", "participant__site", "arm", "allocated_by")
        .order_by("stratum__key", "slot")
    )
    strata = {}
    for allocation in allocations:
        strata.setdefault(allocation.stratum.key, []).append(allocation)
    log_access(request, trial, AccessLog.Action.VIEW_ALLOCATION, "allocation history by stratum")
    return render(
        request,
        "randomization/allocation_history.html",
        {"trial": trial, "strata": sorted(strata.items())},
    )


@login_required
def list_upload(request, trial_key):
    """The unblinded data administrator uploads the statistician's list while in set-up."""
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, Perm.RELEASE_ALLOCATION_KEY, trial)
    form = ListUploadForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
    )
    problems = []
    if request.method == "POST" and form.is_valid():
        try:
            n = import_list(trial, form.cleaned_data["file"])
        except ListError as exc:
            problems = exc.problems
        else:
            messages.success(
                request,
                ngettext(
                    "Imported %(n)d slot. Its content is not shown.",
                    "Imported %(n)d slots. Their content is not shown.",
                    n,
                )
                % {"n": n},
            )
            return redirect("home")
    return render(
        request,
        "randomization/list_upload.html",
        {
            "trial": trial,
            "form": form,
            "problems": problems[:50],
            "more": max(0, len(problems) - 50),
            "has_list": trial.list_entries.exists(),
        },
    )
