from django.apps import AppConfig


class RegistersConfig(AppConfig):
    name = "registers"
    verbose_name = "Register and records data"

    def ready(self):
        # The trial file's `registers:` section is this app's (imrtrial.trialconfig), and the
        # import joins the lock registry: from start-up on, whether or not a page has imported
        # these modules yet.
        from . import config, services  # noqa: F401
