from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import checking


class RegisterFileForm(forms.Form):
    """A register file: checked first (the dry run), imported with a reason once it passes."""

    CHECK, IMPORT = "check", "import"

    file = forms.FileField(
        label=_("Register file (CSV, UTF-8)"),
        help_text=_("Checked whole before anything is stored. At most 2 MB."),
    )
    action = forms.ChoiceField(
        choices=[(CHECK, _("Check")), (IMPORT, _("Import"))],
        initial=CHECK,
        required=False,  # none given: a check
        widget=forms.HiddenInput,
    )
    # The checksum of the file the dry run reported on: an import takes that file only.
    checked = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Reason for the import"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed to import: e.g. which register extract this is."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > checking.MAX_BYTES:
            raise forms.ValidationError(gettext("The file is larger than 2 MB."))
        return upload

    def clean(self):
        data = super().clean()
        if data.get("action") == self.IMPORT and not (data.get("reason") or "").strip():
            self.add_error("reason", gettext("Say why this file is imported."))
        return data
