import functools
import hashlib
from importlib import metadata
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _


class LoginForm(AuthenticationForm):
    """Django's sign-in form with its username length enforced. Django sets the field's
    max_length after building it, so no validator checks it: an over-long name reached
    django-axes, whose failure record holds 255 characters, and the sign-in page answered 500."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


def unbound_rendering_key(form):
    """A digest of everything an unbound form's fields are drawn from: the language, and each
    field's kind, label, help text, whether it is required or disabled, its initial value, its
    choices (value and label) and its widget's settings. Two forms with the same key render the
    same fields, so a page may cache the fields' HTML under it ({% cache %}): drawing a form of
    18 fields through crispy cost 24 ms of CPU, most of the phone desk's screening page (issue
    17). A bound form (its data, its errors) is always drawn afresh."""
    if form.is_bound:
        raise ValueError("only an unbound form renders from its definition alone")
    parts = [
        rendering_release(),
        get_language(),
        type(form).__qualname__,
        form.prefix,
        form.auto_id,
    ]
    for name, field in form.fields.items():
        widget = field.widget
        parts.append(
            (
                name,
                type(field).__qualname__,
                type(widget).__qualname__,
                str(field.label),
                str(field.help_text),
                field.required,
                field.disabled,
                field.localize,
                str(form.get_initial_for_field(field, name)),
                [(str(value), str(label)) for value, label in getattr(field, "choices", ())],
                sorted(
                    (key, str(value))
                    for key, value in vars(widget).items()
                    if key not in ("choices", "_choices")  # above, as values and labels
                ),
            )
        )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@functools.cache
def rendering_release():
    """A digest of what draws a form, read once per process: the project's templates, its
    translation catalogs and the versions of the packages whose templates and code render
    fields. It is part of every cached rendering's key, so a deploy that changes a template, a
    translation or crispy never serves HTML drawn by the release before it from a shared
    cache."""
    digest = hashlib.sha256()
    for package in ("django", "django-crispy-forms", "crispy-bootstrap5"):
        digest.update(f"{package}=={metadata.version(package)}\n".encode())
    directories = [Path(d) for engine in settings.TEMPLATES for d in engine.get("DIRS", ())]
    for directory in directories + [Path(d) for d in settings.LOCALE_PATHS]:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(directory)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


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
            raise forms.ValidationError(_("The date cannot be in the future."), code="future")


class AuditFilterForm(forms.Form):
    """Filters of the audit report and the access log, read from the query string."""

    user = forms.ModelChoiceField(
        queryset=None, required=False, to_field_name="username", empty_label=gettext_lazy("Anyone")
    )
    since = forms.DateField(required=False, label=gettext_lazy("From"), widget=DateInput)
    until = forms.DateField(required=False, label=gettext_lazy("To"), widget=DateInput)
    participant = forms.CharField(
        required=False, max_length=30, label=gettext_lazy("Participant id"), help_text="e.g. P-0007"
    )
    kind = forms.ChoiceField(required=False, label=gettext_lazy("Kind of record"))

    def __init__(self, *args, users, kinds, participants, kind_label=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = users
        self.fields["kind"].choices = [("", "All"), *kinds]
        if kind_label:
            self.fields["kind"].label = kind_label
        self._participants = participants

    def clean_participant(self):
        participant_id = self.cleaned_data["participant"].strip()
        if not participant_id:
            return None
        found = self._participants.filter(participant_id=participant_id).first()
        if found is None:
            raise forms.ValidationError(_("No participant with that id at the sites you audit."))
        return found

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end of the period is before its start.")
        return data


class PreferencesForm(forms.Form):
    """The user's own settings (imrtrial.views.preferences)."""

    language = forms.ChoiceField(
        required=False,
        label=gettext_lazy("Language"),
        help_text=gettext_lazy(
            "The language of your pages and of the e-mails you receive. Without a choice, the"
            " language of your trial is used, else your browser's."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each language in its own name, as the header's switcher shows them.
        self.fields["language"].choices = [
            ("", gettext_lazy("No preference")),
            *settings.LANGUAGES,
        ]
