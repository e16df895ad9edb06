"""The event log's forms. They check what a form can (choices, dates, lengths); the services
check the event whole (safety.services._checked), and their refusal is shown on the form."""

from django import forms
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from imrtrial.forms import PastDateField

from .models import SafetyEvent as E


def _category_choices():
    """Grouped by kind, "Other" once at the end (it belongs to both kinds)."""
    groups = [
        (E.Kind(kind).label, [(c.value, c.label) for c in cats if c != E.Category.OTHER])
        for kind, cats in E.CATEGORIES.items()
    ]
    return [
        ("", _("Choose a category")),
        *groups,
        (E.Category.OTHER.value, E.Category.OTHER.label),
    ]


class EventForm(forms.Form):
    kind = forms.ChoiceField(choices=E.Kind.choices, widget=forms.RadioSelect, label=_("Kind"))
    category = forms.ChoiceField(choices=_category_choices, label=_("Category"))
    onset_on = PastDateField(label=_("Onset date"))
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=E._meta.get_field("description").max_length,
        label=_("Description"),
        help_text=_("What happened, and what was done."),
    )
    serious = forms.BooleanField(required=False, label=_("Serious adverse event"))
    seriousness = forms.MultipleChoiceField(
        choices=E.Seriousness.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Seriousness criteria (serious adverse events only)"),
    )
    outcome = forms.ChoiceField(
        choices=[("", _("Choose an outcome")), *E.Outcome.choices],
        label=pgettext_lazy("safety event", "Outcome"),
    )

    def clean(self):
        data = super().clean()
        kind, category = data.get("kind"), data.get("category")
        if kind and category and category not in E.CATEGORIES[E.Kind(kind)]:
            self.add_error(
                "category",
                gettext("Choose a category of adverse events.")
                if E.Kind(kind) == E.Kind.ADVERSE
                else gettext("Choose a category of beneficial events."),
            )
        return data


class CorrectionForm(EventForm):
    reason = forms.CharField(max_length=500, label=_("Reason for the correction"))


class JudgementForm(forms.Form):
    relatedness = forms.ChoiceField(
        choices=[c for c in E.Relatedness.choices if c[0] != E.Relatedness.NOT_JUDGED],
        widget=forms.RadioSelect,
        label=_("Relatedness to the trial intervention"),
    )
    judged_on = PastDateField(label=_("Judged on"))
    reason = forms.CharField(
        max_length=500,
        required=False,
        label=_("Reason (needed when changing an earlier judgement)"),
    )
