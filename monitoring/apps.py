from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        # The trial's YAML may carry a `source_data_verification:` section: checked with the
        # rest of the file and written in load_trial's transaction (imrtrial.trialconfig).
        from imrtrial import trialconfig

        from . import config, services  # noqa: F401  (services: the writer joins the lock registry)

        trialconfig.register_section(
            config.KEY,
            lambda c, value, so_far: config.check(value, c, config.KEY, so_far),
            config.create,
        )
