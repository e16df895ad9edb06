"""Allocations in the admin: read-only, and visible only to users the gate unblinds at the
participant's site (imrtrial.admin.GateScopedAdmin); any other allocation is a 404."""

from django.contrib import admin

from imrtrial.admin import GateScopedAdmin

from .models import Allocation

HIDDEN = ["slot", "stratum"]


@admin.register(Allocation)
class AllocationAdmin(GateScopedAdmin, admin.ModelAdmin):
    list_display = ["randomization_number", "participant", "arm", "allocated_at", "in_error"]
    exclude = HIDDEN
    readonly_fields = [f.name for f in Allocation._meta.fields if f.name not in HIDDEN]
    site_path = "participant__site"
    unblinded = True
    view_perm = None  # allocation access at the site is what it takes
    model_perms = False

    def has_add_permission(self, request):
        return False  # only the randomize service allocates

    def has_change_permission(self, request, obj=None):
        return False  # "randomized in error" is flagged through the service, with a reason

    def has_delete_permission(self, request, obj=None):
        return False
