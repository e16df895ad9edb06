from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import FormEntry


@admin.register(FormEntry)
class FormEntryAdmin(SimpleHistoryAdmin):
    list_display = ["participant", "instrument", "timepoint", "status", "updated_at"]
    list_filter = ["instrument", "timepoint", "status"]
    # Changes go through assessments.services.save_form, which asks for a reason.
    readonly_fields = ["participant", "instrument", "timepoint", "values", "status", "entered_by"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
