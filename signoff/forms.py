from django import forms
from django.utils.translation import gettext_lazy as _


class SignForm(forms.Form):
    """The signer's credentials, asked again at each signature (21 CFR 11.200(a)(1)(i)), and
    the seal of the digest of the data the page showed them (signoff.services.seal)."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    token = forms.CharField(
        label=_("Authentication code"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text=_("The 6-digit code your authenticator app shows now."),
    )
    agree = forms.BooleanField(label=_("I sign with the meaning stated above."))
    seen = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, needs_code, **kwargs):
        super().__init__(*args, **kwargs)
        if needs_code:
            self.fields["token"].required = True
        else:
            del self.fields["token"]
