from django.urls import path

from . import views

app_name = "safety"
_EVENTS = "<slug:trial_key>/participants/<str:participant_id>/safety-events/"
urlpatterns = [
    path(_EVENTS, views.event_list, name="events"),
    path(f"{_EVENTS}new/", views.event_new, name="event_new"),
    path(f"{_EVENTS}<int:event_pk>/correct/", views.event_correct, name="event_correct"),
    path(f"{_EVENTS}<int:event_pk>/judge/", views.event_judge, name="event_judge"),
]
