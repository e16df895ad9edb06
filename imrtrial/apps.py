from django.apps import AppConfig


class ImrtrialConfig(AppConfig):
    name = "imrtrial"
    verbose_name = "Trial"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
