from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from imrtrial.forms import PastDateField
from imrtrial.i18n_text import level_label

YES_NO = [("yes", _("Yes")), ("no", _("No"))]


class ScreeningForm(forms.Form):
    """A screening: site, referral, one yes/no per criterion, identifying details, consent."""

    site = forms.ModelChoiceField(queryset=None, empty_label=None, label=_("Site"))
    screened_on = PastDateField(label=_("Screened on"))
    referral_source = forms.CharField(max_length=120, required=False, label=_("Referral source"))
    full_name = forms.CharField(max_length=200, required=False, label=_("Full name"))
    national_id = forms.CharField(max_length=40, required=False, label=_("National id"))
    phone = forms.CharField(max_length=40, required=False, label=_("Phone"))
    consent_date = PastDateField(
        required=False,
        label=_("Consent date"),
        help_text=_("Leave empty if consent is not yet given."),
    )
    consent_form_version = forms.CharField(
        max_length=30, required=False, label=_("Consent form version")
    )
    consent_obtained_by = forms.CharField(
        max_length=120, required=False, label=_("Consent obtained by")
    )

    def __init__(self, *args, criteria, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.criteria = list(criteria)
        self.fields["site"].queryset = sites
        self.fields["screened_on"].initial = timezone.localdate()
        for criterion in self.criteria:
            self.fields[f"c_{criterion.code}"] = forms.ChoiceField(
                label=f"{criterion.get_kind_display()}: {criterion.display_text}",
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
                _("Consent needs all three: its date, the form version and who obtained it.")
            )
        return data

    def answers(self):
        return {c.code: self.cleaned_data[f"c_{c.code}"] == "yes" for c in self.criteria}


class ConsentForm(forms.Form):
    consent_date = PastDateField(label=_("Consent date"))
    consent_form_version = forms.CharField(max_length=30, label=_("Consent form version"))
    consent_obtained_by = forms.CharField(max_length=120, label=_("Consent obtained by"))


class EnrolForm(forms.Form):
    """The non-site stratification factors, read back to the caller before enrolment."""

    def __init__(self, *args, factors, **kwargs):
        super().__init__(*args, **kwargs)
        self.factors = [f for f in factors if not f.from_site]
        for factor in self.factors:
            self.fields[factor.code] = forms.ChoiceField(
                label=factor.display_label,
                choices=[(lv["code"], level_label(lv)) for lv in factor.levels],
                widget=forms.RadioSelect,
            )

    def levels(self):
        return {f.code: self.cleaned_data[f.code] for f in self.factors}


class RandomizeForm(forms.Form):
    baseline_completed_on = PastDateField(
        required=False,
        label=_("Baseline assessment completed on"),
        help_text=_("As reported by the centre; the trial randomizes only after baseline."),
    )
    read_back = forms.BooleanField(
        label=_("I have read the participant id and stratification factors back to the caller."),
    )

    def __init__(self, *args, needs_baseline, **kwargs):
        super().__init__(*args, **kwargs)
        if not needs_baseline:
            del self.fields["baseline_completed_on"]
        else:
            self.fields["baseline_completed_on"].required = True


class InErrorForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=1000, label=_("Reason")
    )


class ListUploadForm(forms.Form):
    MAX_BYTES = 2 * 1024 * 1024

    file = forms.FileField(
        label=_("Allocation list (CSV: stratum,slot,arm)"),
        help_text=_("Checked whole before anything is stored; its content is never shown again."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
