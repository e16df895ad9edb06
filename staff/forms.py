"""Forms of the trial administration: they check the input's shape; the services decide."""

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from imrtrial.models import Role, Site

from .services import MAX_DAYS

ALL_SITES = "all"
REASON_REQUIRED = "Give the reason: it is kept in the audit trail."


class ReasonField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Reason")
        kwargs.setdefault("max_length", 500)
        kwargs.setdefault("help_text", "Kept in the audit trail with your name.")
        kwargs.setdefault("error_messages", {"required": REASON_REQUIRED})
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value.strip():
            raise ValidationError(REASON_REQUIRED)
        return value.strip()


# The gate's rule (access.may_grant_role), said where the role is chosen.
ROLE_HELP = "An unblinded role is granted only by an administrator who is unblinded at that site."


class SiteChoiceForm(forms.Form):
    """A role's place: one site the administrator manages, or every site (when they manage
    every site)."""

    def __init__(self, *args, sites, every_site, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(str(s.pk), s.name) for s in sites]
        if every_site:
            choices.insert(0, (ALL_SITES, "All sites"))
        self.fields["site"] = forms.ChoiceField(label=_("Site"), choices=choices)
        self._sites = {str(s.pk): s for s in sites}
        # The site after the role, the reason last.
        self.order_fields([f for f in self.fields if f != "reason"] + ["reason"])

    def clean_site(self):
        value = self.cleaned_data["site"]
        return None if value == ALL_SITES else self._sites[value]


class GrantForm(SiteChoiceForm):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices, help_text=ROLE_HELP)
    reason = ReasonField(label=gettext_lazy("Reason for the grant"))


class InviteForm(SiteChoiceForm):
    email = forms.EmailField(label=gettext_lazy("E-mail address"), max_length=254)
    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150)
    last_name = forms.CharField(label=gettext_lazy("Last name"), max_length=150)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices, help_text=ROLE_HELP)
    reason = ReasonField(
        help_text=gettext_lazy("For example: new assessor at this site from 1 March.")
    )


class WithdrawForm(forms.Form):
    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self._memberships = {str(m.pk): m for m in memberships}
        self.fields["membership"] = forms.ChoiceField(
            label=_("Role to withdraw"),
            choices=[(str(m.pk), _describe(m)) for m in memberships],
        )
        self.fields["reason"] = ReasonField(label=_("Reason for withdrawing"))

    def clean_membership(self):
        return self._memberships[self.cleaned_data["membership"]]


def _describe(membership):
    where = membership.site.name if membership.site_id else "all sites"
    return f"{membership.get_role_display()} ({where})"


class DeactivateForm(forms.Form):
    reason = ReasonField(
        label=gettext_lazy("Reason for deactivating"),
        help_text=gettext_lazy("For example: left the trial unit on 31 May."),
    )


class ResendForm(forms.Form):
    reason = ReasonField(
        label=gettext_lazy("Reason for a new link"),
        help_text=gettext_lazy("For example: the first link expired."),
    )


class SiteForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=120)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Site.Kind.choices)
    active = forms.BooleanField(
        label=gettext_lazy("Active (recruits)"),
        required=False,
        help_text=gettext_lazy("An inactive site recruits no one."),
    )
    reason = ReasonField()

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(_("Give the site's name."))
        return name


class NewSiteForm(SiteForm):
    code = forms.SlugField(
        label=gettext_lazy("Code"),
        max_length=20,
        help_text=gettext_lazy("Short, fixed once saved (e.g. aarhus)."),
    )
    field_order = ["code", "name", "kind", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["active"]


def _days(label, help_text=""):
    return forms.IntegerField(label=label, min_value=0, max_value=MAX_DAYS, help_text=help_text)


class WindowForm(forms.Form):
    window_before_days = _days(gettext_lazy("Days before the due date"))
    window_after_days = _days(gettext_lazy("Days after the due date"))
    reason = ReasonField()


class RemindersForm(forms.Form):
    reminder_lead_days = _days(
        gettext_lazy("Reminder lead days"),
        gettext_lazy("How many days before a visit window opens its assessor hears."),
    )
    escalation_after_days = _days(
        gettext_lazy("Escalation after days"),
        gettext_lazy("Days past its window before an overdue visit is escalated."),
    )
    query_reminder_days = _days(
        gettext_lazy("Query reminder days"),
        gettext_lazy("An open data query older than this is in the digest."),
    )
    attendance_reminder_after_days = _days(gettext_lazy("Attendance reminder after days"))
    reason = ReasonField()


class StatusForm(forms.Form):
    reason = ReasonField()


class InvitationPasswordForm(SetPasswordForm):
    """Django's set-password form (the project's password validators apply)."""
