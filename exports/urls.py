from . import report_views, views

app_name = "exports"
urlpatterns = [
    *views.urlpatterns,
    *report_views.urlpatterns,
]
