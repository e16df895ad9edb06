"""System checks for what a running trial depends on."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


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


@register(Tags.security, deploy=True)
def two_factor_is_required(app_configs, **kwargs):
    if not settings.TWO_FACTOR_REQUIRED:
        return [
            Warning(
                "TWO_FACTOR_REQUIRED is off: unblinded staff and administrators sign in with a "
                "password alone.",
                hint="Unset it (it defaults to on when DEBUG is off) or set it to true.",
                id="imrtrial.W001",
            )
        ]
    return []
