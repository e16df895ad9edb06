from django.urls import path

from . import report_views, views

app_name = "exports"
urlpatterns = [
    *views.urlpatterns,
    *report_views.urlpatterns,
]
