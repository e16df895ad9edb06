from . import blinding_views, report_views, views

app_name = "exports"
urlpatterns = [
    *views.urlpatterns,
    *report_views.urlpatterns,
    *blinding_views.urlpatterns,
]
