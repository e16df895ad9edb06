from django.urls import path

from . import views

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
]
