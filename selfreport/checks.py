"""Deploy checks of the participants' messages (`manage.py check --deploy`).

Contract: a production site whose links would not reach the participant is told so at deploy:
SITE_URL still the local default or not HTTPS (every link and opt-out in a message is built on
it, with no request to take the host from), and the provider's API chosen without its address.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

HTTP_SENDER = "selfreport.sms.HttpSender"


@register(Tags.security, deploy=True)
def site_url_reaches_participants(app_configs, **kwargs):
    address = urlsplit(settings.SITE_URL)
    if address.scheme != "https" or address.hostname in (None, "localhost", "127.0.0.1"):
        return [
            Warning(
                f"SITE_URL is {settings.SITE_URL!r}: the links sent to participants would not "
                "reach this site over HTTPS.",
                hint="Set SITE_URL to the site's public address, e.g. https://trial.example.org.",
                id="selfreport.W001",
            )
        ]
    return []


@register(deploy=True)
def text_message_provider_is_configured(app_configs, **kwargs):
    if settings.SMS_BACKEND == HTTP_SENDER and not (settings.SMS_API_URL and settings.SMS_FROM):
        return [
            Error(
                "SMS_BACKEND is the provider's API, but SMS_API_URL or SMS_FROM is not set.",
                hint="Set both (and SMS_API_TOKEN), or choose another SMS_BACKEND.",
                id="selfreport.E001",
            )
        ]
    return []


# The senders that write each message (its link's token, the participant's address) to the log
# instead of sending it: for `make run` and the tests only.
TO_THE_LOG = (
    "selfreport.sms.ConsoleSender",
    "django.core.mail.backends.console.EmailBackend",
)


@register(Tags.security, deploy=True)
def messages_are_not_written_to_the_log(app_configs, **kwargs):
    chosen = [b for b in (settings.SMS_BACKEND, settings.EMAIL_BACKEND) if b in TO_THE_LOG]
    if chosen:
        return [
            Warning(
                f"{', '.join(chosen)} writes each participant message, with its link and the "
                "participant's address, to the log, and sends nothing.",
                hint="Set EMAIL_URL to the mail server and SMS_BACKEND to the provider's API.",
                id="selfreport.W002",
            )
        ]
    return []
