from django.urls import path

from . import views

app_name = "randomization"
urlpatterns = [
    path("<slug:trial_key>/allocations/", views.allocation_list, name="allocations"),
]
