from django.apps import AppConfig


class FidelityConfig(AppConfig):
    name = "fidelity"
