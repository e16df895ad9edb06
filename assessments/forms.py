from django import forms

from imrtrial.forms import PastDateField
from randomization.models import Withdrawal

from .models import DataQuery, Death, ExclusionAfterRandomization


class ExclusionForm(forms.Form):
    category = forms.ChoiceField(
        choices=ExclusionAfterRandomization.Category.choices,
        widget=forms.RadioSelect,
        label="Why the participant is excluded",
    )
    excluded_on = PastDateField(label="Date of the decision")
    decided_by = forms.CharField(
        max_length=120,
        label="Who decided",
        help_text="A person or a body, e.g. the steering committee.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Shown to those who may see allocations, and to you.",
    )


class DeathForm(forms.Form):
    died_on = PastDateField(label="Date of death")
    cause = forms.ChoiceField(choices=Death.Cause.choices, initial=Death.Cause.UNKNOWN)


class WithdrawalForm(forms.Form):
    level = forms.TypedChoiceField(
        choices=Withdrawal.Level.choices, coerce=int, widget=forms.RadioSelect
    )
    withdrawn_on = PastDateField()
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    confirm_erasure = forms.BooleanField(
        required=False,
        label="Level 3 only: I understand the participant's clinical data will be erased.",
    )

    def __init__(self, *args, may_stop_intervention=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not may_stop_intervention:
            # Stopping the intervention applies to the IMR arm only: offering it to a blinded
            # user would ask them to know the arm, and its refusal would tell them.
            self.fields["level"].choices = [
                c for c in Withdrawal.Level.choices if c[0] in Withdrawal.FOLLOW_UP_LEVELS
            ]

    def clean(self):
        data = super().clean()
        if data.get("level") == Withdrawal.Level.CONSENT and not data.get("confirm_erasure"):
            self.add_error("confirm_erasure", "Confirm the erasure to withdraw at level 3.")
        return data


class IncidentForm(forms.Form):
    assessor = forms.ModelChoiceField(queryset=None, label="Assessor who learned the allocation")
    occurred_on = PastDateField()
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, *args, assessors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assessor"].queryset = assessors


class QueryForm(forms.Form):
    """Open a data query (assessments.queries.open_query)."""

    category = forms.ChoiceField(label="Kind of query", choices=DataQuery.Category.choices)
    text = forms.CharField(
        label="Question to the site",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Name no arm, group, facilitator or programme word: the site's blinded "
        "assessors read it.",
    )


class AnswerForm(forms.Form):
    """Answer a query; for an item, optionally with the corrected value (saved through the
    form's normal save path, the query as the reason)."""

    text = forms.CharField(
        label="Your answer", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    value = forms.CharField(required=False, max_length=200)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, item=None, current="", **kwargs):
        super().__init__(*args, **kwargs)
        if item is None:
            del self.fields["value"]
        else:
            self.fields["value"].label = f"Corrected value of {item.code.upper()} (optional)"
            self.fields[
                "value"
            ].help_text = (
                f"{item.label}. Now: {current or 'empty'}. Leave empty if the value stands."
            )


class QueryActionForm(forms.Form):
    """Close, re-open or cancel a query (the button pressed), with a message."""

    text = forms.CharField(label="Message", max_length=2000)
