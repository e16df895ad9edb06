from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo trial of `make run`. Last in the dependency order: it drives every app's own
    services to build realistic demo data."""

    name = "demo"
