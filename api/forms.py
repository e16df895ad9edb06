from django import forms
from django.utils.translation import gettext_lazy

from imrtrial.models import Perm

from .services import MAX_DAYS


class TokenForm(forms.Form):
    trial = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(
        max_length=80, help_text=gettext_lazy("What the token is for, e.g. 'R on my laptop'.")
    )
    permissions = forms.MultipleChoiceField(
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "Choose only what the token needs; it never has more than your role."
        ),
    )
    days = forms.IntegerField(
        label=gettext_lazy("Valid for (days)"), min_value=1, max_value=MAX_DAYS, initial=90
    )

    def __init__(self, *args, trials, permissions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["trial"].queryset = trials
        self.fields["permissions"].choices = [(p.value, p.label) for p in Perm if p in permissions]


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)
