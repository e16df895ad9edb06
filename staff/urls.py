from django.urls import path

from . import views

app_name = "staff"

_A = "trials/<slug:trial_key>/administration/"

urlpatterns = [
    path(_A, views.overview, name="overview"),
    path(f"{_A}staff/", views.people, name="people"),
    path(f"{_A}staff/invite/", views.invite, name="invite"),
    path(f"{_A}staff/<int:user_id>/", views.person, name="person"),
    path(f"{_A}staff/<int:user_id>/grant/", views.grant, name="grant"),
    path(f"{_A}staff/<int:user_id>/withdraw/", views.withdraw, name="withdraw"),
    path(f"{_A}staff/<int:user_id>/deactivate/", views.deactivate, name="deactivate"),
    path(f"{_A}staff/<int:user_id>/resend/", views.resend, name="resend"),
    path(f"{_A}sites/", views.sites, name="sites"),
    path(f"{_A}sites/<int:site_pk>/", views.site, name="site"),
    path(f"{_A}schedule/", views.schedule, name="schedule"),
    path(f"{_A}schedule/<int:timepoint_pk>/", views.window, name="window"),
    path(f"{_A}reminders/", views.reminders, name="reminders"),
    path(f"{_A}status/", views.status, name="status"),
    # The invitation link: opened signed out, so outside any trial's paths.
    path("invitation/<str:token>/", views.accept, name="accept"),
]
