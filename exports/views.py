"""Dataset exports: the page to start one, its progress, and the download."""

urlpatterns = []
