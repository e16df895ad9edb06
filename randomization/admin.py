"""Allocations in the admin: read-only, and visible only to users the gate unblinds."""

from django.contrib import admin

from imrtrial import access

from .models import Allocation


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = ["randomization_number", "participant", "arm", "allocated_at", "in_error"]
    readonly_fields = [f.name for f in Allocation._meta.fields]

    def get_queryset(self, request):
        trials = [
            t for t in access.trials_of(request.user) if access.may_see_allocation(request.user, t)
        ]
        return super().get_queryset(request).filter(trial__in=trials)

    def has_view_permission(self, request, obj=None):
        if obj is not None:
            return access.may_see_allocation(request.user, obj.trial, obj.participant.site)
        return any(
            access.may_see_allocation(request.user, t) for t in access.trials_of(request.user)
        )

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False  # only the randomize service allocates

    def has_change_permission(self, request, obj=None):
        return False  # "randomized in error" is flagged through the service, with a reason

    def has_delete_permission(self, request, obj=None):
        return False
