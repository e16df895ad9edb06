from django import forms

from imrtrial.forms import PastDateField


class MarkForm(forms.Form):
    checked_on = PastDateField(label="Date the source was checked")
