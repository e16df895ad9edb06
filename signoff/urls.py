from django.urls import path

from . import views

app_name = "signoff"
urlpatterns = [
    path("<slug:trial_key>/signatures/", views.signature_list, name="signatures"),
    path(
        "<slug:trial_key>/participants/<str:participant_id>/sign/",
        views.sign_casebook,
        name="sign_casebook",
    ),
    path("<slug:trial_key>/visits/<int:visit_pk>/sign/", views.sign_visit, name="sign_visit"),
]
