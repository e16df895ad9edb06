from django import forms

from .models import ExportRun

BLINDED = [
    (ExportRun.Dataset.LONG, "Long: one row per participant per timepoint"),
    (ExportRun.Dataset.WIDE, "Wide: one row per participant"),
]
UNBLINDED = [
    (ExportRun.Dataset.PROCESS, ExportRun.Dataset.PROCESS.label),
    (ExportRun.Dataset.KEY, ExportRun.Dataset.KEY.label),
]


class ExportForm(forms.Form):
    dataset = forms.ChoiceField(choices=BLINDED, widget=forms.RadioSelect, initial="long")
    format = forms.ChoiceField(
        choices=ExportRun.Format.choices, widget=forms.RadioSelect, initial="csv"
    )


class ReleaseForm(forms.Form):
    dataset = forms.ChoiceField(choices=UNBLINDED, widget=forms.RadioSelect, initial="key")
    format = forms.ChoiceField(
        choices=[c for c in ExportRun.Format.choices if c[0] != "odm"],
        widget=forms.RadioSelect,
        initial="csv",
        help_text="The key is released as CSV whatever is chosen here.",
    )
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit trail, e.g. 'Steering committee unblinding after lock'.",
    )

    def clean(self):
        data = super().clean()
        if data.get("dataset") == ExportRun.Dataset.KEY:
            data["format"] = ExportRun.Format.CSV
        return data
