from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from randomization.models import IdentifyingDetails


class ContactForm(forms.ModelForm):
    """How a link reaches the participant, and the check it asks."""

    class Meta:
        model = IdentifyingDetails
        fields = ["agreed_to_links", "email", "phone", "birth_year", "language"]
        labels = {
            "agreed_to_links": _("Agreed to receive links to their questionnaires"),
            "email": _("E-mail address"),
            "phone": _("Mobile phone"),
            "birth_year": _("Year of birth"),
            "language": _("Language of the questionnaires"),
        }
        help_texts = {
            "birth_year": _("The link asks for it before it opens."),
            "language": _("Empty: the trial's language."),
        }

    def clean_birth_year(self):
        year = self.cleaned_data.get("birth_year")
        if year is not None and not 1900 <= year <= timezone.localdate().year:
            raise forms.ValidationError(_("Enter a year between 1900 and this year."))
        return year

    def clean(self):
        data = super().clean()
        if data.get("agreed_to_links") and not data.get("birth_year"):
            self.add_error("birth_year", _("A link needs the year of birth for its check."))
        if data.get("agreed_to_links") and not (data.get("email") or data.get("phone")):
            self.add_error("email", _("A link needs an e-mail address or a mobile phone."))
        return data
