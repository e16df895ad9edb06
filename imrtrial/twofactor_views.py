"""Pages of two-factor sign-in: enrol an authenticator app, verify after the password, and an
administrator's reset of someone's device. Policy and services are in imrtrial.twofactor."""

import base64
import re
import xml.etree.ElementTree as ET

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import twofactor

app_name = "two_factor"


class TokenForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Authentication code"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text=gettext_lazy("The 6-digit code your authenticator app shows now."),
    )

    def clean_token(self):
        # Apps show the code as "123 456", and people type it so.
        token = "".join(self.cleaned_data["token"].split())
        if not re.fullmatch(r"\d{6}", token):
            raise ValidationError(_("Enter the 6 digits your authenticator app shows."))
        return token


class ResetForm(forms.Form):
    # simple-history keeps a change reason of up to 100 characters.
    reason = forms.CharField(
        label=gettext_lazy("Reason for the reset"),
        max_length=100,
        help_text=gettext_lazy(
            "For example: lost phone; identity checked by a call to the site lead."
        ),
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError(_("Give the reason for the reset."))
        return reason


def _next_url(request):
    """Where to go after verifying: the page the user was sent from, if it is on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def _throttled_message(error):
    seconds = 1
    if error.until is not None:
        seconds = max(1, int((error.until - timezone.now()).total_seconds() + 0.999))
    return ngettext(
        "Too many wrong codes. Wait %(n)d second, then enter the current code.",
        "Too many wrong codes. Wait %(n)d seconds, then enter the current code.",
        seconds,
    ) % {"n": seconds}


def _qr_svg(device):
    """The device's otpauth:// address as a QR code, drawn here as inline SVG (no script, no
    image host). Accessible: it has a text name, and the secret is written out beside it."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathFillImage)
    svg = image.get_image()
    svg.set("width", "220")
    svg.set("height", "220")
    svg.set("role", "img")
    svg.set("aria-label", "QR code of your secret key for the authenticator app")
    svg.set("class", "qr-code")
    return mark_safe(ET.tostring(svg, encoding="unicode"))  # built by qrcode, no user input


def _secret_text(device):
    """The secret in the base32 form apps accept when typed, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@login_required
def enrol(request):
    user = request.user
    required = twofactor.requires_two_factor(user)
    if twofactor.is_enrolled(user):
        if not user.is_verified():
            # A second device may not be added with a password alone.
            return redirect(f"{reverse('two_factor:verify')}?{request.GET.urlencode()}")
        return render(
            request,
            "registration/two_factor_status.html",
            {
                "required": required,
                "device": TOTPDevice.objects.filter(user=user, confirmed=True).first(),
                "may_reset_others": twofactor.may_reset_anyone(user),
            },
        )
    device = twofactor.pending_device(user)
    if device is None:  # confirmed in another tab meanwhile
        return redirect(f"{reverse('two_factor:enrol')}?{request.GET.urlencode()}")
    form = TokenForm(data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            confirmed = twofactor.confirm_enrolment(user, form.cleaned_data["token"])
        except twofactor.Throttled as error:
            form.add_error("token", _throttled_message(error))
        else:
            if confirmed is not None:
                twofactor.mark_verified(request, confirmed)
                messages.success(
                    request, _("Two-factor sign-in is on. You will be asked for a code each time.")
                )
                return redirect(_next_url(request))
            form.add_error(
                "token",
                "That code is not right. Check the clock of your phone and enter the current code.",
            )
    return render(
        request,
        "registration/two_factor_enrol.html",
        {
            "form": form,
            "required": required,
            "qr_svg": _qr_svg(device),
            "secret": _secret_text(device),
            "next": _next_url(request),
        },
        status=200 if request.method == "GET" or form.is_valid() else 400,
    )


@login_required
def verify(request):
    user = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    if not twofactor.is_enrolled(user):
        return redirect(f"{reverse('two_factor:enrol')}?{request.GET.urlencode()}")
    form = TokenForm(data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = twofactor.check_token(user, form.cleaned_data["token"])
        except twofactor.Throttled as error:
            form.add_error("token", _throttled_message(error))
        else:
            if device is not None:
                twofactor.mark_verified(request, device)
                return redirect(_next_url(request))
            form.add_error("token", "That code is not right. Enter the current code.")
    return render(
        request,
        "registration/two_factor_verify.html",
        {"form": form, "next": _next_url(request)},
        status=200 if request.method == "GET" else 400,
    )


@login_required
def staff(request):
    """The users whose devices this administrator may reset, and the resets made so far."""
    if not twofactor.may_reset_anyone(request.user):
        raise Http404(_("Not found."))
    users = list(twofactor.resettable_users(request.user))
    resets = (
        TOTPDevice.history.filter(history_type="-", user_id__in=[u.pk for u in users])
        .select_related("history_user", "user")
        .order_by("-history_date")[:100]
    )
    return render(request, "registration/two_factor_staff.html", {"users": users, "resets": resets})


@login_required
def reset(request, user_id):
    target = get_object_or_404(get_user_model(), pk=user_id, is_active=True)
    if not twofactor.may_reset(request.user, target):
        raise Http404(_("Not found."))
    devices = TOTPDevice.objects.filter(user=target).count()
    form = ResetForm(data=request.POST or None)
    if request.method == "POST" and form.is_valid() and devices:
        removed = twofactor.reset_devices(
            target, by=request.user, reason=form.cleaned_data["reason"]
        )
        messages.success(
            request,
            ngettext(
                "Removed %(count)d device of %(user)s. They set up a new one at their next"
                " sign-in.",
                "Removed %(count)d devices of %(user)s. They set up a new one at their next"
                " sign-in.",
                removed,
            )
            % {"count": removed, "user": target.get_username()},
        )
        return redirect("two_factor:staff")
    return render(
        request,
        "registration/two_factor_reset.html",
        {"target": target, "devices": devices, "form": form},
        status=400 if request.method == "POST" else 200,
    )


urlpatterns = [
    path("verify/", verify, name="verify"),
    path("", enrol, name="enrol"),
    path("staff/", staff, name="staff"),
    path("staff/<int:user_id>/reset/", reset, name="reset"),
]
