"""IMR data in the admin: read-only, and only for users the gate unblinds at the group's site.

Raw fidelity ratings are not registered: the admin would show one rater the other's scores
before both are in. Changes go through fidelity.services (and their pages)."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from imrtrial import access

from .models import Attendance, FidelityAssessment, GroupMembership, ImrGroup, Session


class UnblindedReadOnlyAdmin(SimpleHistoryAdmin):
    group_path = "group"  # how to reach the ImrGroup from a row

    def _group(self, obj):
        for part in self.group_path.split("__"):
            obj = getattr(obj, part)
        return obj

    def _trials(self, request):
        return [
            t for t in access.trials_of(request.user) if access.may_see_allocation(request.user, t)
        ]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        trial_field = "trial" if self.group_path == "self" else f"{self.group_path}__trial"
        site_field = trial_field.replace("trial", "site")
        allowed = [
            site.pk
            for trial in self._trials(request)
            for site in trial.sites.all()
            if access.may_see_allocation(request.user, trial, site)
        ]
        return qs.filter(**{f"{site_field}__in": allowed})

    def has_view_permission(self, request, obj=None):
        if obj is not None:
            group = obj if self.group_path == "self" else self._group(obj)
            return access.may_see_allocation(request.user, group.trial, group.site)
        return bool(self._trials(request))

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ImrGroup)
class ImrGroupAdmin(UnblindedReadOnlyAdmin):
    group_path = "self"
    list_display = ["name", "trial", "site", "start_date", "enrolment", "capacity"]


@admin.register(GroupMembership)
class GroupMembershipAdmin(UnblindedReadOnlyAdmin):
    list_display = ["participant", "group", "joined_on", "left_on"]


@admin.register(Session)
class SessionAdmin(UnblindedReadOnlyAdmin):
    list_display = ["group", "date", "duration_minutes"]


@admin.register(Attendance)
class AttendanceAdmin(UnblindedReadOnlyAdmin):
    group_path = "session__group"
    list_display = ["session", "participant", "status"]


@admin.register(FidelityAssessment)
class FidelityAssessmentAdmin(UnblindedReadOnlyAdmin):
    list_display = ["group", "kind", "date"]
