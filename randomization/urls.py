from django.urls import path

from . import views

app_name = "randomization"
urlpatterns = [
    path("<slug:trial_key>/allocations/", views.allocation_lookup, name="allocations"),
    path(
        "<slug:trial_key>/allocations/by-stratum/",
        views.allocation_history,
        name="allocation_history",
    ),
    path("<slug:trial_key>/desk/", views.desk, name="desk"),
    path("<slug:trial_key>/desk/screen/", views.screening_new, name="screen"),
    path(
        "<slug:trial_key>/desk/screenings/<str:number>/", views.screening_detail, name="screening"
    ),
    path(
        "<slug:trial_key>/desk/randomize/<str:participant_id>/", views.randomize, name="randomize"
    ),
    path("<slug:trial_key>/desk/result/<str:participant_id>/", views.result, name="result"),
    path(
        "<slug:trial_key>/desk/result/<str:participant_id>/in-error/",
        views.mark_in_error,
        name="in_error",
    ),
    path("<slug:trial_key>/allocation-list/upload/", views.list_upload, name="list_upload"),
]
