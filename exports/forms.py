from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ExportRun

BLINDED = [
    (ExportRun.Dataset.LONG, _("Long: one row per participant per timepoint")),
    (ExportRun.Dataset.WIDE, _("Wide: one row per participant")),
]
UNBLINDED = [
    (ExportRun.Dataset.PROCESS, ExportRun.Dataset.PROCESS.label),
    (ExportRun.Dataset.KEY, ExportRun.Dataset.KEY.label),
]


class ExportForm(forms.Form):
    dataset = forms.ChoiceField(
        choices=BLINDED, widget=forms.RadioSelect, initial="long", label=_("Dataset")
    )
    format = forms.ChoiceField(
        choices=ExportRun.Format.choices, widget=forms.RadioSelect, initial="csv", label=_("Format")
    )


class ReleaseForm(forms.Form):
    dataset = forms.ChoiceField(
        choices=UNBLINDED, widget=forms.RadioSelect, initial="key", label=_("Dataset")
    )
    format = forms.ChoiceField(
        choices=[c for c in ExportRun.Format.choices if c[0] != "odm"],
        widget=forms.RadioSelect,
        initial="csv",
        label=_("Format"),
        help_text=_("The key is released as CSV whatever is chosen here."),
    )
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Reason"),
        help_text=_(
            "Recorded in the audit trail, e.g. 'Steering committee unblinding after lock'."
        ),
    )

    def clean(self):
        data = super().clean()
        if data.get("dataset") == ExportRun.Dataset.KEY:
            data["format"] = ExportRun.Format.CSV
        return data
