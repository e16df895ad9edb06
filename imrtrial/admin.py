"""Admin for trial configuration. Clinical rows cannot be deleted here (nor anywhere)."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from . import access
from .models import AccessLog, Arm, Membership, Participant, Site, StratificationFactor, Trial


class NoDeleteMixin:
    def has_delete_permission(self, request, obj=None):
        return False


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0
    # The export code is the allocation key: it is not part of the admin at all. The key holder
    # releases it through the key-release page after database lock.
    fields = ["code", "label", "ratio", "is_intervention"]

    def has_delete_permission(self, request, obj=None):
        return False


class SiteInline(admin.TabularInline):
    model = Site
    extra = 0

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Trial)
class TrialAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["name", "key", "registration_id", "status"]
    # Block sizes help predict the next allocation: never shown.
    exclude = ["block_sizes"]
    inlines = [ArmInline, SiteInline]


@admin.register(StratificationFactor)
class StratificationFactorAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["label", "trial", "from_site"]


@admin.register(Membership)
class MembershipAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["user", "trial", "site", "role", "active"]
    list_filter = ["trial", "role", "active"]


@admin.register(Participant)
class ParticipantAdmin(NoDeleteMixin, SimpleHistoryAdmin):
    list_display = ["participant_id", "trial", "site", "status"]
    list_filter = ["trial", "site", "status"]
    search_fields = ["participant_id"]


@admin.register(AccessLog)
class AccessLogAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ["at", "user", "trial", "action", "target"]
    list_filter = ["action", "trial"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Who viewed which participant's allocation is itself allocation-revealing.
        trials = access.trials_of(request.user)
        if obj is not None:
            return access.may_see_allocation(request.user, obj.trial)
        return any(access.may_see_allocation(request.user, t) for t in trials)
