from django.urls import path

from . import views

app_name = "selfreport"
urlpatterns = [
    # Staff, from the visit page.
    path(
        "trials/<slug:trial_key>/visits/<int:visit_pk>/hand-over/",
        views.hand_over_start,
        name="hand_over_start",
    ),
    path(
        "trials/<slug:trial_key>/visits/<int:visit_pk>/send-link/",
        views.link_send,
        name="link_send",
    ),
    path(
        "trials/<slug:trial_key>/participants/<str:participant_id>/contact/",
        views.contact_edit,
        name="contact",
    ),
    # The participant, on the tablet handed over (the assessor's session, confined).
    path("hand-over/<int:pk>/", views.hand_over_page, name="hand_over"),
    path(
        "hand-over/<int:pk>/<slug:instrument>/<int:number>/",
        views.hand_over_item,
        name="hand_over_item",
    ),
    path(
        "hand-over/<int:pk>/<slug:instrument>/finish/",
        views.hand_over_finish,
        name="hand_over_finish",
    ),
    path("hand-over/<int:pk>/end/", views.hand_over_end, name="hand_over_end"),
    # The participant, from a link (no account).
    path("r/<str:token>/", views.link_page, name="link"),
    path("r/<str:token>/<slug:instrument>/<int:number>/", views.link_item, name="link_item"),
    path("r/<str:token>/<slug:instrument>/finish/", views.link_finish, name="link_finish"),
    path("r/<str:token>/stop/", views.stop_messages, name="stop"),
]
