"""System checks for what a running trial depends on."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def randomization_secret_is_set(app_configs, **kwargs):
    secret = settings.RANDOMIZATION_SECRET
    if len(secret) < 32:
        return [
            Error(
                "RANDOMIZATION_SECRET must be at least 32 characters in production.",
                hint="It makes the allocation sequence unguessable; keep it outside the database.",
                id="imrtrial.E001",
            )
        ]
    return []
