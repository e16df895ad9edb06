from django import forms
from django.utils.translation import gettext_lazy as _

from imrtrial.forms import PastDateField


class MarkForm(forms.Form):
    checked_on = PastDateField(label=_("Date the source was checked"))
