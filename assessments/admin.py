"""Form entries in the admin: read-only, scoped to the sites where the user may see
participants (imrtrial.admin.GateScopedAdmin). Changes go through assessments.services, which
validates them and asks for a reason.

Who entered a staff-rated form (e.g. the IMRS clinician version) can tell the arm: its rater
may be the participant's IMR facilitator. So for every staff-rated entry alike, users not
unblinded at the participant's site see neither its author nor the authors of its history."""

from django.contrib import admin
from django.utils.text import capfirst
from simple_history.admin import SimpleHistoryAdmin

from imrtrial import access
from imrtrial.admin import GateScopedAdmin
from imrtrial.audittrail import HIDDEN

from . import registry
from .audit import free_text_items
from .models import FormEntry


@admin.register(FormEntry)
class FormEntryAdmin(GateScopedAdmin, SimpleHistoryAdmin):
    list_display = ["participant", "instrument", "timepoint", "status", "updated_at"]
    list_filter = ["instrument", "timepoint", "status"]
    trial_path = "participant__trial"
    site_path = "participant__site"
    readonly_fields = ["participant", "instrument", "timepoint", "values", "status", "entered_by"]

    def has_delete_permission(self, request, obj=None):
        return False

    def free_text_keys(self, obj):
        return {"values": free_text_items(obj)}

    def _values_shown(self, request, obj):
        """The entry's values as the reader may see them: a field the admin renders read-only,
        with free text written by unblinded staff withheld from a reader blinded at the site.
        One callable per request: the admin matches read-only fields by identity."""
        cached = getattr(request, "_imrtrial_values_shown", None)
        if cached is not None:
            return cached
        mask = self._mask(request, obj) or (lambda field, value: value)

        def values(entry):
            return mask("values", entry.values)

        values.short_description = FormEntry._meta.get_field("values").verbose_name
        request._imrtrial_values_shown = values
        return values

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is None:
            return fields
        shown = self._values_shown(request, obj)
        return [shown if f == "values" else f for f in fields]

    def _author_hidden(self, request, entry):
        participant = entry.participant
        return registry.is_staff_rated(entry.instrument) and not access.may_see_allocation(
            request.user, participant.trial, participant.site
        )

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and self._author_hidden(request, obj):
            fields = [f for f in fields if f != "entered_by"]
        if obj is not None:
            fields = [f for f in fields if f != "values" and not callable(f)]
            fields.insert(3, self._values_shown(request, obj))
        return fields

    def set_history_delta_changes(self, request, historical_records, **kwargs):
        super().set_history_delta_changes(request, historical_records, **kwargs)
        records = list(historical_records)
        if records and self._author_hidden(request, records[0].instance):
            author = capfirst(FormEntry._meta.get_field("entered_by").verbose_name)
            for record in records:
                record.history_user, record.author_shown = None, HIDDEN
                changes = getattr(record, "history_delta_changes", None)
                if changes:
                    record.history_delta_changes = [c for c in changes if c["field"] != author]
