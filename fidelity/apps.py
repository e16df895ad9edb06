from django.apps import AppConfig


class FidelityConfig(AppConfig):
    name = "fidelity"

    def ready(self):
        # The trial file's `imr_programme:` section (imrtrial.trialconfig).
        from . import config  # noqa: F401
