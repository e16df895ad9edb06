"""Pages of the trial administration. Each asks imrtrial.access (the gate) and answers 404 to
anyone it says no to, so a page's existence tells nothing; acting on oneself is a 403. Views
parse and call one service; a refusal is shown beside the form with nothing saved.

Nothing here names an arm, a group or an allocation: a trial administrator is blinded."""

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from assessments.home import may_lock_database
from imrtrial import access
from imrtrial.errors import Refused
from imrtrial.models import Membership, Timepoint, Trial
from imrtrial.twofactor import SESSION_BACKEND

from . import services
from .forms import (
    DeactivateForm,
    GrantForm,
    InvitationPasswordForm,
    InviteForm,
    NewSiteForm,
    RemindersForm,
    ResendForm,
    SiteForm,
    StatusForm,
    WindowForm,
    WithdrawForm,
)


def _trial(request, trial_key):
    trial = access.trial_or_404(request.user, trial_key)
    if not access.may_administer(request.user, trial):
        raise Http404(_("Not found."))
    return trial


def _configurable_trial(request, trial_key):
    trial = _trial(request, trial_key)
    if not access.may_configure_trial(request.user, trial):
        raise Http404(_("Not found."))
    return trial


def _visible_memberships(user, trial):
    """Memberships of the trial at the sites the user manages, and those at every site."""
    return Membership.objects.filter(trial=trial).filter(
        Q(site__in=access.staff_sites(user, trial)) | Q(site__isnull=True)
    )


def _person_or_404(request, trial, user_id):
    person = (
        get_user_model()
        .objects.filter(pk=user_id, memberships__in=_visible_memberships(request.user, trial))
        .distinct()
        .first()
    )
    if person is None:
        raise Http404(_("Not found."))
    return person


def _site_forms_kwargs(user, trial):
    return {
        "sites": list(access.staff_sites(user, trial).order_by("name")),
        "every_site": access.may_manage_staff_at(user, trial, None),
    }


@login_required
def overview(request, trial_key):
    trial = _trial(request, trial_key)
    user = request.user
    return render(
        request,
        "staff/overview.html",
        {
            "trial": trial,
            "may_configure": access.may_configure_trial(user, trial),
            "may_lock": may_lock_database(user, trial),
        },
    )


@login_required
def people(request, trial_key):
    """Who holds what: every member of staff of the sites the user manages, with their roles."""
    trial = _trial(request, trial_key)
    memberships = (
        _visible_memberships(request.user, trial)
        .select_related("user", "site")
        .order_by("user__username", "site__name", "role")
    )
    show_withdrawn = request.GET.get("withdrawn") == "1"
    rows = {}
    for m in memberships:
        if not m.active and not show_withdrawn:
            continue
        row = rows.setdefault(m.user_id, {"user": m.user, "roles": []})
        row["roles"].append(m)
    return render(
        request,
        "staff/people.html",
        {"trial": trial, "rows": list(rows.values()), "show_withdrawn": show_withdrawn},
    )


def _person_context(request, trial, person, **forms):
    user = request.user
    memberships = list(
        _visible_memberships(user, trial)
        .filter(user=person)
        .select_related("site")
        .order_by("-active", "site__name", "role")
    )
    may_change = access.may_change_roles_of(user, person, trial)
    withdrawable = [
        m for m in memberships if m.active and access.may_manage_staff_at(user, trial, m.site)
    ]
    kwargs = _site_forms_kwargs(user, trial)
    return {
        "trial": trial,
        "person": person,
        "memberships": memberships,
        "is_self": person.pk == user.pk,
        "may_change": may_change,
        "may_deactivate": access.may_deactivate(user, person),
        "grant_form": forms.get("grant_form") or GrantForm(prefix="grant", **kwargs),
        "withdraw_form": forms.get("withdraw_form")
        or (WithdrawForm(memberships=withdrawable, prefix="withdraw") if withdrawable else None),
        "deactivate_form": forms.get("deactivate_form") or DeactivateForm(prefix="deactivate"),
        "resend_form": forms.get("resend_form") or ResendForm(prefix="resend"),
        "awaiting_password": not person.has_usable_password() and person.is_active,
    }


@login_required
def person(request, trial_key, user_id):
    trial = _trial(request, trial_key)
    target = _person_or_404(request, trial, user_id)
    return render(request, "staff/person.html", _person_context(request, trial, target))


def _acting_on(request, trial_key, user_id):
    """The trial and the person a POST acts on; 403 when it is oneself or a Django
    administrator (the gate's may_change_roles_of)."""
    trial = _trial(request, trial_key)
    target = _person_or_404(request, trial, user_id)
    if not access.may_change_roles_of(request.user, target, trial):
        raise PermissionDenied(_("You may not change this person's roles."))
    return trial, target


def _refused_person(request, trial, target, status=400, **forms):
    return render(
        request,
        "staff/person.html",
        _person_context(request, trial, target, **forms),
        status=status,
    )


@require_POST
@login_required
def grant(request, trial_key, user_id):
    trial, target = _acting_on(request, trial_key, user_id)
    form = GrantForm(request.POST, prefix="grant", **_site_forms_kwargs(request.user, trial))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.grant_role(
                target, trial, data["role"], data["site"], by=request.user, reason=data["reason"]
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Granted the role to %(user)s.") % {"user": target.get_username()}
            )
            return redirect("staff:person", trial.key, target.pk)
    return _refused_person(request, trial, target, grant_form=form)


@require_POST
@login_required
def withdraw(request, trial_key, user_id):
    trial, target = _acting_on(request, trial_key, user_id)
    withdrawable = [
        m
        for m in _visible_memberships(request.user, trial).filter(user=target, active=True)
        if access.may_manage_staff_at(request.user, trial, m.site)
    ]
    form = WithdrawForm(request.POST, memberships=withdrawable, prefix="withdraw")
    if form.is_valid():
        try:
            services.withdraw_role(
                form.cleaned_data["membership"], by=request.user, reason=form.cleaned_data["reason"]
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Withdrew the role of %(user)s: it holds no more from their next page on.")
                % {"user": target.get_username()},
            )
            return redirect("staff:person", trial.key, target.pk)
    return _refused_person(request, trial, target, withdraw_form=form)


@require_POST
@login_required
def deactivate(request, trial_key, user_id):
    trial, target = _acting_on(request, trial_key, user_id)
    form = DeactivateForm(request.POST, prefix="deactivate")
    if form.is_valid():
        try:
            services.deactivate_account(
                target, trial, by=request.user, reason=form.cleaned_data["reason"]
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Deactivated the account of %(user)s.") % {"user": target.get_username()},
            )
            return redirect("staff:people", trial.key)
    return _refused_person(request, trial, target, deactivate_form=form)


def _mail_failed(request, person):
    messages.warning(
        request,
        _(
            "The account of %(user)s is saved, but the mail server did not take the message to "
            "%(email)s. Check the address and send a new link below."
        )
        % {"user": person.get_username(), "email": person.email},
    )


def _link_for(request):
    return lambda token: request.build_absolute_uri(reverse("staff:accept", args=[token]))


@require_POST
@login_required
def resend(request, trial_key, user_id):
    trial, target = _acting_on(request, trial_key, user_id)
    form = ResendForm(request.POST, prefix="resend")
    if form.is_valid():
        try:
            invitation = services.resend_invitation(
                target,
                trial,
                by=request.user,
                reason=form.cleaned_data["reason"],
                link_for=_link_for(request),
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            if invitation.mail_failed:
                _mail_failed(request, target)
            else:
                messages.success(
                    request, _("Sent a new link to %(email)s.") % {"email": target.email}
                )
            return redirect("staff:person", trial.key, target.pk)
    return _refused_person(request, trial, target, resend_form=form)


@login_required
def invite(request, trial_key):
    trial = _trial(request, trial_key)
    form = InviteForm(request.POST or None, **_site_forms_kwargs(request.user, trial))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invitation = services.invite(
                trial,
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                role=data["role"],
                site=data["site"],
                by=request.user,
                reason=data["reason"],
                link_for=_link_for(request),
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            if invitation.mail_failed:
                _mail_failed(request, invitation.user)
            else:
                messages.success(
                    request,
                    _("Invited %(user)s: the link to set a password went to %(email)s.")
                    % {"user": invitation.user.get_username(), "email": invitation.user.email},
                )
            return redirect("staff:person", trial.key, invitation.user.pk)
    return render(
        request,
        "staff/invite.html",
        {"trial": trial, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@never_cache
def accept(request, token):
    """The invitation link: set a password, then on to two-factor enrolment."""
    invitation = services.invitation_for(token)
    if invitation is None:
        return render(request, "staff/invitation_invalid.html", status=404)
    form = InvitationPasswordForm(invitation.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.accept_invitation(token, form.cleaned_data["new_password1"])
        except Refused:
            return render(request, "staff/invitation_invalid.html", status=404)
        # The session's backend must be one of AUTHENTICATION_BACKENDS, or the next request
        # finds no user: the one that loads the user with the two-factor facts.
        login(request, user, backend=SESSION_BACKEND)
        messages.success(request, _("Your password is set. Now set up two-factor sign-in."))
        return redirect(f"{reverse('two_factor:enrol')}?{urlencode({'next': reverse('home')})}")
    return render(
        request,
        "staff/invitation_accept.html",
        {"invitation": invitation, "form": form},
        status=400 if request.method == "POST" else 200,
    )


# --- Trial set-up ------------------------------------------------------------------------------


@login_required
def sites(request, trial_key):
    trial = _configurable_trial(request, trial_key)
    form = NewSiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            site = services.add_site(
                trial,
                code=data["code"],
                name=data["name"],
                kind=data["kind"],
                by=request.user,
                reason=data["reason"],
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Added the site %(site)s.") % {"site": site.name})
            return redirect("staff:sites", trial.key)
    return render(
        request,
        "staff/sites.html",
        {"trial": trial, "sites": trial.sites.all(), "form": form, "setup": _in_setup(trial)},
        status=400 if request.method == "POST" else 200,
    )


def _in_setup(trial):
    return trial.status == Trial.Status.SETUP


@login_required
def site(request, trial_key, site_pk):
    trial = _configurable_trial(request, trial_key)
    the_site = get_object_or_404(trial.sites, pk=site_pk)
    form = SiteForm(request.POST or None, initial=_initial(the_site, SiteForm))
    if request.method == "POST" and form.is_valid():
        values = {k: form.cleaned_data[k] for k in services.SITE_FIELDS}
        try:
            services.change_site(
                the_site, by=request.user, reason=form.cleaned_data["reason"], **values
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Saved the site."))
            return redirect("staff:sites", trial.key)
    return render(
        request,
        "staff/site.html",
        {"trial": trial, "site": the_site, "form": form, "setup": _in_setup(trial)},
        status=400 if request.method == "POST" else 200,
    )


def _initial(obj, form_class):
    return {name: getattr(obj, name) for name in form_class.base_fields if hasattr(obj, name)}


@login_required
def schedule(request, trial_key):
    trial = _configurable_trial(request, trial_key)
    return render(
        request,
        "staff/schedule.html",
        {"trial": trial, "timepoints": trial.timepoints.all(), "setup": _in_setup(trial)},
    )


@login_required
def window(request, trial_key, timepoint_pk):
    trial = _configurable_trial(request, trial_key)
    timepoint = get_object_or_404(Timepoint, trial=trial, pk=timepoint_pk)
    form = WindowForm(request.POST or None, initial=_initial(timepoint, WindowForm))
    if request.method == "POST" and form.is_valid():
        values = {k: form.cleaned_data[k] for k in services.WINDOW_FIELDS}
        try:
            services.change_window(
                timepoint, by=request.user, reason=form.cleaned_data["reason"], **values
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Saved the window of %(timepoint)s.") % {"timepoint": timepoint.label}
            )
            return redirect("staff:schedule", trial.key)
    return render(
        request,
        "staff/window.html",
        {"trial": trial, "timepoint": timepoint, "form": form, "setup": _in_setup(trial)},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def reminders(request, trial_key):
    trial = _configurable_trial(request, trial_key)
    form = RemindersForm(request.POST or None, initial=_initial(trial, RemindersForm))
    if request.method == "POST" and form.is_valid():
        values = {k: form.cleaned_data[k] for k in services.REMINDER_FIELDS}
        try:
            services.change_reminders(
                trial, by=request.user, reason=form.cleaned_data["reason"], **values
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Saved the reminder settings."))
            return redirect("staff:overview", trial.key)
    return render(
        request,
        "staff/reminders.html",
        {"trial": trial, "form": form, "setup": _in_setup(trial)},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def status(request, trial_key):
    """Open and close the trial with a reason; the database lock is its own page
    (assessments:database_lock), kept by the data manager and its services."""
    trial = _configurable_trial(request, trial_key)
    form = StatusForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        move = request.POST.get("move", "")
        try:
            services.change_status(trial, move, by=request.user, reason=form.cleaned_data["reason"])
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, "The trial is open." if move == "open" else "The trial is closed."
            )
            return redirect("staff:status", trial.key)
    return render(
        request,
        "staff/status.html",
        {
            "trial": trial,
            "form": form,
            "moves": services.status_moves(trial),
            "may_lock": may_lock_database(request.user, trial),
        },
        status=400 if request.method == "POST" else 200,
    )
