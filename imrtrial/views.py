"""Pages every role shares. Views parse, ask imrtrial.access, and render."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from . import access, audittrail, i18n
from .audittrail import Viewer
from .forms import AuditFilterForm, PreferencesForm
from .home import links_for, may_audit
from .models import AccessLog, Participant, Role

# What each role is here to do, shown on the home page.
_WORK = {
    Role.TRIAL_ADMIN: [
        gettext_lazy("Invite staff, grant roles and set up sites in the Trial administration.")
    ],
    Role.COORDINATOR: [
        gettext_lazy("Screen and randomize callers; follow allocations at your sites.")
    ],
    Role.ASSESSOR: [
        gettext_lazy("Enter interview ratings and questionnaires for your participants.")
    ],
    Role.FACILITATOR: [gettext_lazy("Log IMR group sessions and attendance.")],
    Role.FIDELITY_RATER: [gettext_lazy("Rate IMR groups on the IMR Fidelity Scale.")],
    Role.DATA_MANAGER: [gettext_lazy("Verify and lock forms; export the blinded dataset.")],
    Role.STATISTICIAN: [gettext_lazy("Download the blinded dataset (arms coded A/B).")],
    Role.KEY_HOLDER: [gettext_lazy("Hold the allocation key; release it after database lock.")],
    Role.MONITOR: [
        gettext_lazy("Verify forms against the source documents at your sites; raise queries.")
    ],
    Role.INVESTIGATOR: [gettext_lazy("Sign your participants' casebooks.")],
    Role.CASE_MANAGER: [
        gettext_lazy(
            "Enter the staff ratings of your site's participants: the clinician IMR scale,"
            " substance use and adverse events."
        ),
        gettext_lazy(
            "Keep each participant's safety event log (from their page): adverse and beneficial"
            " events, and how they relate to the trial intervention."
        ),
    ],
}


@login_required
def home(request):
    """Each trial of the user's, with their roles and the pages each app says they may open
    (imrtrial.home: every app registers its links with its pages' own rules)."""
    cards = []
    for trial in access.trials_of(request.user).order_by("name"):
        roles = sorted(access.roles_of(request.user, trial), key=list(Role).index)
        cards.append(
            {
                "trial": trial,
                "roles": [Role(role).label for role in roles],
                "work": [line for role in roles for line in _WORK[Role(role)]],
                "links": links_for(request.user, trial),
            }
        )
    return render(request, "imrtrial/home.html", {"cards": cards})


# --- Audit ------------------------------------------------------------------------------------

AUDIT_PAGE_ROWS = 50


def _auditor(request, trial_key):
    """The trial and what the user may see of its audit trail; 404 without view_audit."""
    trial = access.trial_or_404(request.user, trial_key)
    if not may_audit(request.user, trial):
        raise Http404(_("Not found."))
    return trial, Viewer(request.user, trial)


def _audit_filters(request, viewer, kinds, kind_label=None):
    trial = viewer.trial
    form = AuditFilterForm(
        request.GET or None,
        users=get_user_model()
        .objects.filter(memberships__trial=trial)
        .distinct()
        .order_by("username"),
        kinds=kinds,
        participants=Participant.objects.filter(trial=trial, site__in=viewer.audit_sites),
        kind_label=kind_label,
    )
    if not form.is_bound:
        return form, {}
    if not form.is_valid():
        return form, None
    return form, {k: v for k, v in form.cleaned_data.items() if v}


def _page(request, rows):
    return Paginator(rows, AUDIT_PAGE_ROWS).get_page(request.GET.get("page"))


@login_required
def audit_trail(request, trial_key):
    """Every change to the trial's records: who, when, old and new values, and why."""
    trial, viewer = _auditor(request, trial_key)
    form, filters = _audit_filters(request, viewer, [(s.key, s.label) for s in viewer.sources()])
    page = rows = None
    if filters is not None:
        page = _page(request, audittrail.changes(viewer, **filters))
        rows = audittrail.describe(viewer, page.object_list)
    return render(
        request,
        "imrtrial/audit_changes.html",
        {"trial": trial, "form": form, "page": page, "rows": rows},
    )


def _access_entries(viewer):
    """Access-log rows the viewer may see (imrtrial.access.access_log_scope, as in the admin),
    and the actions to filter by."""
    scope = access.access_log_scope(viewer.user, viewer.trial)
    entries = AccessLog.objects.filter(scope)
    if not viewer.unblinded_sites:
        return entries, [(AccessLog.Action.EXPORT, AccessLog.Action.EXPORT.label)]
    return entries, list(AccessLog.Action.choices)


@login_required
def access_log(request, trial_key):
    """Every view of allocation data and every export."""
    trial, viewer = _auditor(request, trial_key)
    entries, actions = _access_entries(viewer)
    form, filters = _audit_filters(request, viewer, actions, kind_label="Action")
    page = None
    if filters is not None:
        if "user" in filters:
            entries = entries.filter(user=filters["user"])
        entries = entries.filter(
            audittrail.period("at", filters.get("since"), filters.get("until"))
        )
        if "participant" in filters:
            entries = entries.filter(target=filters["participant"].participant_id)
        if "kind" in filters:
            entries = entries.filter(action=filters["kind"])
        page = _page(request, entries.select_related("user").order_by("-at", "-pk"))
    return render(
        request, "imrtrial/audit_access.html", {"trial": trial, "form": form, "page": page}
    )


# --- Language ---------------------------------------------------------------------------------


@require_POST
def set_language(request):
    """The header's switcher: Django's set_language (the language cookie, then back to the page
    it was sent from), and for a signed-in user their stored preference too."""
    response = django_set_language(request)
    language = i18n.supported(request.POST.get("language"))
    if language and request.user.is_authenticated:
        i18n.set_preference(request.user, language)
    return response


@never_cache
@login_required
def preferences(request):
    """The user's own settings: the language of their pages and mail."""
    form = PreferencesForm(
        request.POST or None, initial={"language": i18n.preferred_language(request.user)}
    )
    if request.method == "POST" and form.is_valid():
        language = form.cleaned_data["language"]
        i18n.set_preference(request.user, language)
        chosen = language or i18n.trial_language(request.user)
        if chosen:
            translation.activate(chosen)
        messages.success(request, _("Your preferences are saved."))
        response = redirect("preferences")
        if language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        else:
            response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return response
    return render(request, "imrtrial/preferences.html", {"form": form})
