from django.urls import path

from . import docs, views

app_name = "api"
urlpatterns = [
    path("v1/schema/", docs.schema, name="schema"),
    path("v1/docs/", docs.swagger, name="docs"),
    path("v1/metadata/", views.metadata, name="metadata"),
    path("v1/records/", views.records, name="records"),
    path("v1/forms/import/", views.import_forms, name="import"),
    path("v1/status/", views.record_status, name="status"),
    path("v1/queries/", views.query_list, name="queries"),
    path("v1/queries/<int:query_pk>/answer/", views.query_answer, name="query_answer"),
    path("v1/exports/", views.export_start, name="exports"),
    path("v1/exports/<int:pk>/", views.export_detail, name="export"),
    path("v1/exports/<int:pk>/download/", views.export_download, name="export_download"),
    path("v1/randomize/", views.randomize, name="randomize"),
]
