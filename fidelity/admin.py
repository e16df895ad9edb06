"""IMR data in the admin: read-only, and only for users the gate unblinds at the group's site
(imrtrial.admin.GateScopedAdmin); any other row is a 404.

Raw fidelity ratings are not registered: the admin would show one rater the other's scores
before both are in. Changes go through fidelity.services (and their pages)."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from imrtrial.admin import GateScopedAdmin

from .models import Attendance, FidelityAssessment, GroupMembership, ImrGroup, Session


class UnblindedReadOnlyAdmin(GateScopedAdmin, SimpleHistoryAdmin):
    trial_path = "group__trial"
    site_path = "group__site"
    unblinded = True
    view_perm = None  # allocation access at the group's site is what it takes
    model_perms = False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ImrGroup)
class ImrGroupAdmin(UnblindedReadOnlyAdmin):
    trial_path = "trial"
    site_path = "site"
    list_display = ["name", "trial", "site", "start_date", "enrolment", "capacity"]


@admin.register(GroupMembership)
class GroupMembershipAdmin(UnblindedReadOnlyAdmin):
    list_display = ["participant", "group", "joined_on", "left_on"]


@admin.register(Session)
class SessionAdmin(UnblindedReadOnlyAdmin):
    list_display = ["group", "date", "duration_minutes"]


@admin.register(Attendance)
class AttendanceAdmin(UnblindedReadOnlyAdmin):
    trial_path = "session__group__trial"
    site_path = "session__group__site"
    list_display = ["session", "participant", "status"]


@admin.register(FidelityAssessment)
class FidelityAssessmentAdmin(UnblindedReadOnlyAdmin):
    list_display = ["group", "kind", "date"]
