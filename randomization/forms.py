from django import forms
from django.utils import timezone

from imrtrial.forms import PastDateField

YES_NO = [("yes", "Yes"), ("no", "No")]


class ScreeningForm(forms.Form):
    """A screening: site, referral, one yes/no per criterion, identifying details, consent."""

    site = forms.ModelChoiceField(queryset=None, empty_label=None)
    screened_on = PastDateField()
    referral_source = forms.CharField(max_length=120, required=False)
    full_name = forms.CharField(max_length=200, required=False, label="Full name")
    national_id = forms.CharField(max_length=40, required=False, label="National id")
    phone = forms.CharField(max_length=40, required=False)
    consent_date = PastDateField(
        required=False,
        help_text="Leave empty if consent is not yet given.",
    )
    consent_form_version = forms.CharField(max_length=30, required=False)
    consent_obtained_by = forms.CharField(max_length=120, required=False)

    def __init__(self, *args, criteria, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        self.fields["site"].queryset = sites
        self.fields["screened_on"].initial = timezone.localdate()
        for criterion in self.criteria:
            self.fields[f"c_{criterion.code}"] = forms.ChoiceField(
                label=f"{criterion.get_kind_display()}: {criterion.text}",
                choices=YES_NO,
                widget=forms.RadioSelect(attrs={"class": "form-check-inline"}),
            )

    def criterion_fields(self):
        return [self[f"c_{c.code}"] for c in self.criteria]

    def clean(self):
        data = super().clean()
        consent = [
            data.get("consent_date"),
            data.get("consent_form_version"),
            data.get("consent_obtained_by"),
        ]
        if any(consent) and not all(consent):
            raise forms.ValidationError(
                "Consent needs all three: its date, the form version and who obtained it."
            )
        return data

    def answers(self):
        return {c.code: self.cleaned_data[f"c_{c.code}"] == "yes" for c in self.criteria}


class ConsentForm(forms.Form):
    consent_date = PastDateField()
    consent_form_version = forms.CharField(max_length=30)
    consent_obtained_by = forms.CharField(max_length=120)


class EnrolForm(forms.Form):
    """The non-site stratification factors, read back to the caller before enrolment."""

    def __init__(self, *args, factors, **kwargs):
        super().__init__(*args, **kwargs)
        self.factors = [f for f in factors if not f.from_site]
        for factor in self.factors:
            self.fields[factor.code] = forms.ChoiceField(
                label=factor.label,
                choices=[(lv["code"], lv["label"]) for lv in factor.levels],
                widget=forms.RadioSelect,
            )

    def levels(self):
        return {f.code: self.cleaned_data[f.code] for f in self.factors}


class RandomizeForm(forms.Form):
    baseline_completed_on = PastDateField(
        required=False,
        label="Baseline assessment completed on",
        help_text="As reported by the centre; the trial randomizes only after baseline.",
    )
    read_back = forms.BooleanField(
        label="I have read the participant id and stratification factors back to the caller.",
    )

    def __init__(self, *args, needs_baseline, **kwargs):
        super().__init__(*args, **kwargs)
        if not needs_baseline:
            del self.fields["baseline_completed_on"]
        else:
            self.fields["baseline_completed_on"].required = True


class InErrorForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)


class ListUploadForm(forms.Form):
    MAX_BYTES = 2 * 1024 * 1024

    file = forms.FileField(
        label="Allocation list (CSV: stratum,slot,arm)",
        help_text="Checked whole before anything is stored; its content is never shown again.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 2 MB.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
