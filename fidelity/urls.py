from django.urls import path

from . import views

app_name = "fidelity"
urlpatterns = [
    path("<slug:trial_key>/imr-groups/", views.group_list, name="groups"),
    path("<slug:trial_key>/imr-groups/new/", views.group_new, name="group_new"),
    path("<slug:trial_key>/imr-groups/<int:pk>/", views.group_detail, name="group"),
    path("<slug:trial_key>/imr-groups/<int:pk>/end/", views.group_end, name="group_end"),
    path("<slug:trial_key>/imr-groups/<int:pk>/members/add/", views.member_add, name="member_add"),
    path(
        "<slug:trial_key>/imr-groups/<int:pk>/members/<int:membership_pk>/leave/",
        views.member_leave,
        name="member_leave",
    ),
    path(
        "<slug:trial_key>/imr-groups/<int:pk>/sessions/new/", views.session_new, name="session_new"
    ),
    path(
        "<slug:trial_key>/imr-groups/<int:pk>/sessions/<int:session_pk>/",
        views.session_detail,
        name="session",
    ),
    path("<slug:trial_key>/imr-groups/<int:pk>/fidelity/", views.fidelity_report, name="report"),
    path(
        "<slug:trial_key>/imr-groups/<int:pk>/fidelity/new/",
        views.assessment_new,
        name="assessment_new",
    ),
    path(
        "<slug:trial_key>/imr-groups/<int:pk>/fidelity/<int:assessment_pk>/",
        views.assessment_detail,
        name="assessment",
    ),
]
