"""The project's URLs plus the fidelity app's, for tests that run before (or after) the fidelity
URLs are wired into imrtrial/urls.py."""

from django.urls import include, path

from imrtrial import urls as project

_wired = any(getattr(p, "namespace", None) == "fidelity" for p in project.urlpatterns)
urlpatterns = list(project.urlpatterns)
if not _wired:
    urlpatterns.append(path("trials/", include("fidelity.urls")))
