from django.urls import path

from . import response_views, status_views, views

app_name = "assessments"
urlpatterns = [
    path("<slug:trial_key>/participants/", views.participant_list, name="participant_list"),
    path(
        "<slug:trial_key>/participants/<str:participant_id>/",
        views.participant_detail,
        name="participant_detail",
    ),
    path(
        "<slug:trial_key>/participants/<str:participant_id>/withdraw/",
        views.withdrawal_new,
        name="withdraw",
    ),
    path(
        "<slug:trial_key>/participants/<str:participant_id>/exclude/",
        views.exclusion_new,
        name="exclude",
    ),
    path(
        "<slug:trial_key>/participants/<str:participant_id>/death/",
        views.death_new,
        name="death",
    ),
    path(
        "<slug:trial_key>/participants/<str:participant_id>/unblinding/",
        views.incident_new,
        name="incident",
    ),
    path("<slug:trial_key>/worklist/", views.worklist, name="worklist"),
    path("<slug:trial_key>/reminders/", views.reminder_list, name="reminders"),
    path("<slug:trial_key>/visits/<int:visit_pk>/", views.visit_detail, name="visit"),
    path("<slug:trial_key>/visits/<int:visit_pk>/guess/", views.guess, name="guess"),
    path("<slug:trial_key>/visits/<int:visit_pk>/manage/", views.visit_manage, name="manage"),
    path(
        "<slug:trial_key>/visits/<int:visit_pk>/forms/<slug:instrument>/<slug:kind>/",
        views.entry_form,
        name="entry",
    ),
    path(
        "<slug:trial_key>/visits/<int:visit_pk>/reconcile/<slug:instrument>/",
        views.reconcile,
        name="reconcile",
    ),
    path("<slug:trial_key>/queries/", views.query_list, name="query_list"),
    path("<slug:trial_key>/queries/<int:query_pk>/", views.query_detail, name="query"),
    path(
        "<slug:trial_key>/queries/<int:query_pk>/answer/", views.query_answer, name="query_answer"
    ),
    path("<slug:trial_key>/queries/<int:query_pk>/act/", views.query_act, name="query_act"),
    path("<slug:trial_key>/visits/<int:visit_pk>/queries/new/", views.query_new, name="query_new"),
    path(
        "<slug:trial_key>/visits/<int:visit_pk>/entries/<int:entry_pk>/status/",
        views.entry_status,
        name="entry_status",
    ),
]
urlpatterns += [
    path("<slug:trial_key>/status/", status_views.status_dashboard, name="status"),
    path("<slug:trial_key>/queue/", status_views.queue, name="queue"),
    path("<slug:trial_key>/lock/", status_views.database_lock, name="database_lock"),
    path(
        "<slug:trial_key>/participants/<str:participant_id>/casebook/",
        status_views.casebook_lock,
        name="casebook_lock",
    ),
]
urlpatterns += [
    path(
        "<slug:trial_key>/self-report-responses/",
        response_views.response_report,
        name="response_report",
    ),
    path(
        "<slug:trial_key>/self-report-responses.csv",
        response_views.response_report_csv,
        name="response_report_csv",
    ),
]
