from django.apps import AppConfig


class AssessmentsConfig(AppConfig):
    name = "assessments"

    def ready(self):
        # A malformed instrument definition stops start-up with a message naming the file.
        from imrtrial import lifecycle

        from . import registry, services

        registry.load()
        # Visits exist from the moment their anchor does: scheduled by the service that enrols
        # or randomizes, never by a page on GET.
        lifecycle.follow(services.schedule_participant_visits)
        # Data queries' writers join the lock registry and open queries block locking, from
        # start-up on, whether or not a page has imported them yet; the trial file's
        # `outcomes:` section joins the trial loader's checks.
        from . import outcomes, queries  # noqa: F401
