"""Forms parse input; the rules of the trial (contamination, dates, two raters) are checked in
fidelity.services, whose refusals the views show as form errors."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from imrtrial.forms import DateInput

from . import rules
from .models import Attendance, FidelityAssessment, ImrGroup, Module


def _username(user):
    return user.get_full_name() or user.get_username()


class UserChoices(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        return _username(obj)


class GroupForm(forms.Form):
    name = forms.CharField(max_length=120, label=_("Name"))
    site = forms.ModelChoiceField(queryset=None, empty_label=None, label=_("Site"))
    facilitators = UserChoices(queryset=None, label=_("Facilitators"), help_text=_("Two or three."))
    start_date = forms.DateField(widget=DateInput(), label=_("Start date"))
    planned_sessions = forms.IntegerField(min_value=1, max_value=200, label=_("Planned sessions"))
    schedule = forms.CharField(
        max_length=120, required=False, label=_("Schedule"), help_text=_("e.g. Tuesdays 10:00")
    )
    session_minutes = forms.IntegerField(
        min_value=1, max_value=600, initial=60, label=_("Session minutes")
    )
    enrolment = forms.ChoiceField(choices=ImrGroup.Enrolment.choices, label=_("Enrolment"))
    capacity = forms.IntegerField(min_value=1, max_value=50, initial=10, label=_("Capacity"))

    def __init__(self, *args, sites, facilitators, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        self.fields["facilitators"].queryset = facilitators


class MemberForm(forms.Form):
    participant_id = forms.CharField(max_length=30, label=_("Participant id"))
    joined_on = forms.DateField(widget=DateInput(), label=_("Joined on"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["joined_on"].initial = timezone.localdate()
        # The browser suggests the eligible ids from a <datalist> on the page (no script).
        self.fields["participant_id"].widget.attrs.update({"list": "eligible", "autofocus": True})


class LeaveForm(forms.Form):
    left_on = forms.DateField(widget=DateInput(), label=_("Left on"))
    reason = forms.CharField(max_length=300, required=False, label=_("Reason"))


class EndGroupForm(forms.Form):
    ended_on = forms.DateField(widget=DateInput(), label=_("Last day of the group"))
    reason = forms.CharField(max_length=300, label=_("Why it ended early"))


class SessionForm(forms.Form):
    """One session and one radio row per member, all defaulting to what a usual week is:
    today, the group's length, every facilitator present, every member attended."""

    date = forms.DateField(widget=DateInput(), label=_("Date"))
    modules = forms.MultipleChoiceField(
        choices=Module.choices, widget=forms.CheckboxSelectMultiple, label=_("Module(s) covered")
    )
    duration_minutes = forms.IntegerField(min_value=1, max_value=600, label=_("Length (minutes)"))
    facilitators_present = UserChoices(queryset=None, label=_("Facilitators present"))
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label=_("Notes")
    )

    def __init__(self, *args, group, members, date, **kwargs):
        super().__init__(*args, **kwargs)
        self.members = list(members)
        self.fields["date"].initial = date
        self.fields["duration_minutes"].initial = group.session_minutes
        facilitators = group.facilitators.order_by("username")
        self.fields["facilitators_present"].queryset = facilitators
        self.fields["facilitators_present"].initial = list(facilitators)
        for participant in self.members:
            self.fields[f"status_{participant.pk}"] = forms.ChoiceField(
                label=participant.participant_id,
                choices=Attendance.Status.choices,
                initial=Attendance.Status.ATTENDED,
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
                error_messages={"required": _("Choose this member's attendance.")},
            )

    def status_fields(self):
        return [(p, self[f"status_{p.pk}"]) for p in self.members]

    def attendance(self):
        return {p: self.cleaned_data[f"status_{p.pk}"] for p in self.members}


class AttendanceChangeForm(forms.Form):
    participant = forms.IntegerField(widget=forms.HiddenInput)
    status = forms.ChoiceField(choices=Attendance.Status.choices, label=_("Status"))
    reason = forms.CharField(max_length=300, label=_("Reason for the change"))


class FollowUpCallForm(forms.Form):
    participant = forms.ChoiceField(choices=(), label=_("Member called"))
    called_on = forms.DateField(widget=DateInput(), label=_("Called on"))
    outcome = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label=_("Outcome"))

    def __init__(self, *args, missed, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["participant"].choices = [(p.pk, p.participant_id) for p in missed]
        self.fields["called_on"].initial = timezone.localdate()


class AssessmentForm(forms.Form):
    kind = forms.ChoiceField(choices=FidelityAssessment.Kind.choices, label=_("Kind"))
    date = forms.DateField(widget=DateInput(), label=_("Date"))
    data_sources = forms.MultipleChoiceField(
        choices=FidelityAssessment.DataSource.choices,
        widget=forms.CheckboxSelectMultiple,
        label=_("Data sources"),
    )
    report = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label=_("Report")
    )


class RatingForm(forms.Form):
    """One 1-5 radio row per item the assessment's kind covers."""

    def __init__(self, *args, assessment, with_report=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.items = assessment.items
        for item in self.items:
            self.fields[f"item_{item}"] = forms.TypedChoiceField(
                label=f"{item}. {gettext(rules.ITEMS[item])}",
                choices=[(n, str(n)) for n in rules.SCORES],
                coerce=int,
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
                error_messages={
                    "required": _("Rate this item."),
                    "invalid_choice": _("Rate this item from 1 to 5."),
                },
            )
        if with_report:
            self.fields["report"] = forms.CharField(
                widget=forms.Textarea(attrs={"rows": 4}),
                required=False,
                initial=assessment.report,
                label=_("Report"),
            )

    def item_fields(self):
        return [self[f"item_{item}"] for item in self.items]

    def scores(self):
        return {item: self.cleaned_data[f"item_{item}"] for item in self.items}
