from django.apps import AppConfig


class SignoffConfig(AppConfig):
    name = "signoff"
    verbose_name = "Investigator sign-off"

    def ready(self):
        # Signing joins the lock registry, an unsigned casebook blocks its lock where the trial
        # asks for it, every write of clinical data records the signatures it invalidates, the
        # dashboard shows signatures and load_trial stores the trial's setting: from start-up
        # on, whether or not a page has imported these modules yet.
        from . import dashboard, services  # noqa: F401
