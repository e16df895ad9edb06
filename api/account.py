"""The pages of API tokens: a user's own (under /account/, beside two-factor sign-in), and the
trial administrator's list of the trial's tokens, to revoke any of them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from imrtrial import access, twofactor
from imrtrial.errors import Refused
from imrtrial.models import Perm

from . import services
from .forms import RevokeForm, TokenForm
from .models import ApiToken


def _form(user, data=None):
    trials = access.trials_of(user).order_by("name")
    held = {perm for trial in trials for perm in services.permissions_held(user, trial)}
    return TokenForm(data, trials=trials, permissions=held)


@never_cache
@login_required
def token_list(request):
    user = request.user
    form = _form(user, request.POST if request.method == "POST" else None)
    created = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            token, text = services.create_token(
                user, d["trial"], name=d["name"], permissions=d["permissions"], days=d["days"]
            )
        except Refused as exc:
            form.add_error(None, str(exc))
        else:
            created = (token, text)
            form = _form(user)
    return render(
        request,
        "api/token_list.html",
        {
            "form": form,
            "created": created,
            "tokens": ApiToken.objects.filter(user=user).select_related("trial", "revoked_by"),
            "needs_two_factor": twofactor.requires_two_factor(user)
            and not twofactor.is_enrolled(user),
        },
        # 201: the token was made, and its text is on this page once (never stored to be
        # shown again); 400: the form again, nothing made.
        status=201 if created else 400 if request.method == "POST" else 200,
    )


@require_POST
@login_required
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken.objects.select_related("trial"), pk=pk)
    if not services.may_revoke(request.user, token):
        raise Http404(_("Not found."))
    form = RevokeForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    services.revoke_token(token, by=request.user, reason=reason)
    messages.success(request, _("Token %(token)s is revoked.") % {"token": f"imrt_{token.key_id}…"})
    if token.user_id == request.user.pk:
        return redirect("api_tokens")
    return redirect("api_trial_tokens", token.trial.key)


@login_required
def trial_tokens(request, trial_key):
    """The trial administrator's list: every token of the trial, to revoke. Without the tokens'
    names: free text by their owners, who may be unblinded staff, and the administrator is
    blinded (the token id, owner, scope and dates identify a token)."""
    trial = access.trial_or_404(request.user, trial_key)
    access.require(request.user, Perm.MANAGE_TRIAL, trial)
    return render(
        request,
        "api/trial_tokens.html",
        {
            "trial": trial,
            "tokens": ApiToken.objects.filter(trial=trial).select_related("user", "revoked_by"),
        },
    )


urlpatterns = [
    path("account/api-tokens/", token_list, name="api_tokens"),
    path("account/api-tokens/<int:pk>/revoke/", token_revoke, name="api_token_revoke"),
    path("trials/<slug:trial_key>/api-tokens/", trial_tokens, name="api_trial_tokens"),
]
