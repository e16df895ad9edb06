from django import forms
from django.utils import timezone


class DateInput(forms.DateInput):
    """A browser date picker. Its value must be ISO (YYYY-MM-DD) whatever the site's locale,
    or the browser shows the field empty."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class PastDateField(forms.DateField):
    """A date that has happened: screening, consent, baseline, withdrawal, incident. Checked
    against the site's local date, shown with the browser's date picker."""

    widget = DateInput

    def validate(self, value):
        super().validate(value)
        if value and value > timezone.localdate():
            raise forms.ValidationError("The date cannot be in the future.", code="future")
