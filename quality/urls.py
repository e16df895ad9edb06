from django.urls import path

from . import views

app_name = "quality"
urlpatterns = [
    path("<slug:trial_key>/quality-rules/", views.rule_list, name="rules"),
    path("<slug:trial_key>/quality-rules/run/", views.run_now, name="run_now"),
]
