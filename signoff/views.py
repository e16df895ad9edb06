"""The investigator's pages: casebooks to sign, and the signing page of a casebook or a visit.

Blinded pages: only a site investigator of the participant's site opens them (404 otherwise,
imrtrial.access.may_sign), and nothing on them differs between the arms: every form due at a
visit is listed for every participant, with its state, and the author of a form as the gate
labels them (unblinded staff as "Trial staff"; every staff-rated form's author so). Thin: the
credentials and the signature are signoff.services'.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from assessments import registry
from assessments.dashboard import State, form_state
from assessments.models import FormEntry, Visit
from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.models import Participant

from . import digest, services
from .forms import SignForm
from .models import Signature

PER_PAGE = 50


def _not_signed():
    return services.Status(Signature.State.NOT_SIGNED)


@require_safe
@login_required
def signature_list(request, trial_key):
    """The participants of the investigator's sites, with the state of each casebook's and
    each visit's signature."""
    trial = access.trial_or_404(request.user, trial_key)
    sites = access.sites_where_may_sign(request.user, trial)
    if not sites.exists():
        raise Http404(_("Not found."))
    participants = (
        Participant.objects.filter(trial=trial, site__in=sites, randomized_on__isnull=False)
        .select_related("site")
        .order_by("participant_id")
    )
    page = Paginator(participants, PER_PAGE).get_page(request.GET.get("page"))
    on_page = list(page.object_list)
    found = services.states(p.pk for p in on_page)
    visits = {}
    for v in Visit.objects.filter(participant__in=on_page).select_related("timepoint"):
        visits.setdefault(v.participant_id, []).append(v)
    rows = [
        (
            p,
            found.get((p.pk, None)) or _not_signed(),
            [
                (v, found.get((p.pk, v.pk)) or _not_signed())
                for v in sorted(visits.get(p.pk, []), key=lambda v: v.timepoint.order)
            ],
        )
        for p in on_page
    ]
    return render(
        request, "signoff/signature_list.html", {"trial": trial, "rows": rows, "page": page}
    )


def _visit_or_404(user, trial, visit_pk):
    visit = get_object_or_404(
        Visit.objects.select_related("participant__site", "participant__trial", "timepoint"),
        pk=visit_pk,
        participant__trial=trial,
    )
    if not access.may_sign(user, visit.participant):
        raise Http404(_("Not found."))
    return visit


def _forms(user, participant, visits):
    """[(visit, [form rows])] of what a signature covers: every form due at each visit, its
    state, whether it is data of record (signed) and who entered it, as the gate labels them."""
    entries = {}
    counting = set(
        FormEntry.objects.counting().filter(participant=participant).values_list("pk", flat=True)
    )
    for e in FormEntry.objects.filter(participant=participant).select_related("entered_by"):
        entries.setdefault((e.timepoint, e.instrument), {})[e.kind] = e
    trial, site = participant.trial, participant.site
    # Who entered a staff-rated form is hidden from a reader blinded at the site on every such
    # form alike (as the audit trail and the admin do): the rater of an IMR participant may be
    # their facilitator, of a control participant someone blinded, so a name shown for one and
    # a label for the other would tell the arm.
    unblinded = access.may_see_allocation(user, trial, site)
    out = []
    for visit in visits:
        rows = []
        for code in visit.timepoint.instruments:
            kinds = entries.get((visit.timepoint.code, code), {})
            state = form_state({k: e.status for k, e in kinds.items()}, visit.missed)
            counted = next((e for e in kinds.values() if e.pk in counting), None)
            author = "—"
            if counted and registry.is_staff_rated(code) and not unblinded:
                author = access.NEUTRAL_AUTHOR
            elif counted:
                author = access.author_label(user, counted.entered_by, trial, site)
            rows.append(
                {
                    "name": registry.name_of(code),
                    "state": _(State.LABELS[state]),
                    "signed": counted is not None,
                    "author": author,
                }
            )
        out.append((visit, rows))
    return out


@login_required
def sign_casebook(request, trial_key, participant_id):
    trial = access.trial_or_404(request.user, trial_key)
    participant = access.participant_or_404(request.user, trial, participant_id)
    if not access.may_sign(request.user, participant):
        raise Http404(_("Not found."))
    return _sign(request, trial, participant, None)


@login_required
def sign_visit(request, trial_key, visit_pk):
    trial = access.trial_or_404(request.user, trial_key)
    visit = _visit_or_404(request.user, trial, visit_pk)
    return _sign(request, trial, visit.participant, visit)


def _sign(request, trial, participant, visit):
    user = request.user
    needs_code = services.needs_code(user)
    form = SignForm(request.POST if request.method == "POST" else None, needs_code=needs_code)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            # Outside the signing transaction: a wrong password or code is counted.
            proof = services.reauthenticate(request, user, d["password"], d.get("token", ""))
            seen = services.unseal(participant, visit, d["seen"])
            services.sign(participant, visit, by=user, proof=proof, seen=seen)
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            what = visit.timepoint.display_label if visit else _("casebook")
            messages.success(
                request,
                _("Signed: %(pid)s, %(what)s.") % {"pid": participant.participant_id, "what": what},
            )
            if visit:
                return redirect("signoff:sign_visit", trial.key, visit.pk)
            return redirect("signoff:sign_casebook", trial.key, participant.participant_id)
    visits = (
        [visit]
        if visit
        else list(participant.visits.select_related("timepoint").order_by("timepoint__order"))
    )
    current = services.current_digest(participant, visit)
    if request.method == "POST":
        form.data = form.data.copy()
        form.data["seen"], form.data["password"] = services.seal(current), ""
        if "token" in form.data:
            form.data["token"] = ""
    else:
        form.initial["seen"] = services.seal(current)
    found = services.states([participant.pk])
    return render(
        request,
        "signoff/signature_form.html",
        {
            "trial": trial,
            "participant": participant,
            "visit": visit,
            "meaning": Signature.MEANING_VISIT if visit else Signature.MEANING_CASEBOOK,
            "status": found.get((participant.pk, visit.pk if visit else None)) or _not_signed(),
            "forms": [
                (v, found.get((participant.pk, v.pk)) or _not_signed(), rows)
                for v, rows in _forms(user, participant, visits)
            ],
            "nothing": current == digest.EMPTY,
            "form": form,
            "needs_code": needs_code,
            "printed_name": user.get_full_name(),
            "history": participant.signatures.filter(visit=visit).select_related("visit"),
        },
    )
