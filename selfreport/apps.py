from django.apps import AppConfig


class SelfreportConfig(AppConfig):
    name = "selfreport"
    verbose_name = "Participant self-report"

    def ready(self):
        from . import checks  # noqa: F401  (registers the deploy checks)
