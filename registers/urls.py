from django.urls import path

from . import views

app_name = "registers"
urlpatterns = [
    path("<slug:trial_key>/registers/", views.dataset_list, name="datasets"),
    path("<slug:trial_key>/registers/<slug:dataset>/", views.batch_list, name="batches"),
    path("<slug:trial_key>/registers/<slug:dataset>/import/", views.import_file, name="import"),
]
