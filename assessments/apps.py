from django.apps import AppConfig


class AssessmentsConfig(AppConfig):
    name = "assessments"

    def ready(self):
        # A malformed instrument definition stops start-up with a message naming the file.
        from . import registry

        registry.load()
