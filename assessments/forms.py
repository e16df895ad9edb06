from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from imrtrial.forms import PastDateField
from randomization.models import Withdrawal

from .models import DataQuery, Death, ExclusionAfterRandomization


class ExclusionForm(forms.Form):
    category = forms.ChoiceField(
        choices=ExclusionAfterRandomization.Category.choices,
        widget=forms.RadioSelect,
        label=_("Why the participant is excluded"),
    )
    excluded_on = PastDateField(label=_("Date of the decision"))
    decided_by = forms.CharField(
        max_length=120,
        label=_("Who decided"),
        help_text=_("A person or a body, e.g. the steering committee."),
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label=_("Reason"),
        help_text=_("Shown to those who may see allocations, and to you."),
    )


class DeathForm(forms.Form):
    died_on = PastDateField(label=_("Date of death"))
    cause = forms.ChoiceField(
        choices=Death.Cause.choices, initial=Death.Cause.UNKNOWN, label=_("Cause")
    )


class WithdrawalForm(forms.Form):
    level = forms.TypedChoiceField(
        choices=Withdrawal.Level.choices, coerce=int, widget=forms.RadioSelect, label=_("Level")
    )
    withdrawn_on = PastDateField(label=_("Withdrawn on"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label=_("Reason")
    )
    confirm_erasure = forms.BooleanField(
        required=False,
        label=_("Level 3 only: I understand the participant's clinical data will be erased."),
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
            self.add_error(
                "confirm_erasure", gettext("Confirm the erasure to withdraw at level 3.")
            )
        return data


class IncidentForm(forms.Form):
    assessor = forms.ModelChoiceField(queryset=None, label=_("Assessor who learned the allocation"))
    occurred_on = PastDateField(label=_("Occurred on"))
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label=_("Description")
    )

    def __init__(self, *args, assessors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assessor"].queryset = assessors


class QueryForm(forms.Form):
    """Open a data query (assessments.queries.open_query)."""

    category = forms.ChoiceField(label=_("Kind of query"), choices=DataQuery.Category.choices)
    text = forms.CharField(
        label=_("Question to the site"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_(
            "Name no arm, group, facilitator or programme word: the site's blinded "
            "assessors read it."
        ),
    )


class AnswerForm(forms.Form):
    """Answer a query; for an item, optionally with the corrected value (saved through the
    form's normal save path, the query as the reason)."""

    text = forms.CharField(
        label=_("Your answer"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    value = forms.CharField(required=False, max_length=200, label=_("Corrected value"))
    version = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, item=None, current="", **kwargs):
        super().__init__(*args, **kwargs)
        if item is None:
            del self.fields["value"]
        else:
            self.fields["value"].label = gettext("Corrected value of %(code)s (optional)") % {
                "code": item.code.upper()
            }
            self.fields["value"].help_text = gettext(
                "%(label)s. Now: %(current)s. Leave empty if the value stands."
            ) % {"label": item.label, "current": current or gettext("empty")}


class QueryActionForm(forms.Form):
    """Close, re-open or cancel a query (the button pressed), with a message."""

    text = forms.CharField(label=_("Message"), max_length=2000)
