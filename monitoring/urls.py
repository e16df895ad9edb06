from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [
    path("<slug:trial_key>/sdv/", views.progress_page, name="progress"),
    path("<slug:trial_key>/sdv/forms/", views.form_list, name="forms"),
    path("<slug:trial_key>/sdv/visits/<int:visit_pk>/", views.visit_page, name="visit"),
    path("<slug:trial_key>/sdv/entries/<int:entry_pk>/", views.entry_page, name="entry"),
]
