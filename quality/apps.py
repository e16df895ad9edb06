from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "quality"
    verbose_name = "Data quality rules"

    def ready(self):
        # The trial file's `quality_rules:` section (imrtrial.trialconfig) and the entry page's
        # save check (assessments.services) are this app's, registered from start-up on, so a
        # trial file is never checked, nor a form saved, without them. Its tasks too, so "Run
        # now" finds its task by name (task_named) even where Celery's autodiscovery has not
        # looked (a test process with a real worker).
        from . import config, services, tasks  # noqa: F401
