"""Text messages to participants, through a sender chosen in the settings.

Contract:
- `get_sender()` is an instance of the class settings.SMS_BACKEND names (a dotted path, from
  the environment): ConsoleSender for `make run`, LocmemSender in the tests, HttpSender for a
  provider's web API.
- A sender's `send(to, text)` returns only once the provider accepted the message and raises
  on anything else (refused, unreachable, slow): the outbox (selfreport.messaging) then keeps
  the message pending and counts the attempt. A sender never retries on its own, so a message
  is not sent twice behind the outbox's back.
- Nothing here knows what a message says; the sender's name (SMS_FROM) is a setting and must
  not name the trial or its programme (selfreport.messaging says why).
"""

import json
import logging
import urllib.request

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# What LocmemSender sent, as (to, text), like django.core.mail.outbox.
outbox = []

TIMEOUT_SECONDS = 10


def get_sender():
    """The configured sender (a new instance: the settings are read afresh)."""
    return import_string(settings.SMS_BACKEND)()


class ConsoleSender:
    """Writes each message to the log: for a local demo, where nothing may reach a phone."""

    def send(self, to, text):
        logger.info("Text message to %s:\n%s", to, text)


class LocmemSender:
    """Keeps each message in the module's `outbox` list, for the tests."""

    def send(self, to, text):
        outbox.append((to, text))


class SmsRefused(Exception):
    """The provider answered, and did not accept the message."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without the message, and its 200 would look like
    acceptance: a redirect is an answer that is not 2xx (HTTPError), like any other."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class HttpSender:
    """A provider's JSON web API: POST {"to", "from", "text"} to SMS_API_URL with the bearer
    token SMS_API_TOKEN. Any answer but 2xx, and any network error, raises."""

    def __init__(self):
        self.url = settings.SMS_API_URL
        self.token = settings.SMS_API_TOKEN
        self.sender = settings.SMS_FROM
        # urllib would also open file: and ftp: addresses; a provider is reached over HTTP.
        if not self.url.startswith(("https://", "http://")):
            raise SmsRefused("SMS_API_URL is not an http(s) address.")

    def send(self, to, text):
        body = json.dumps({"to": to, "from": self.sender, "text": text}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        # The opener raises HTTPError for 3xx, 4xx and 5xx; the status is checked again for
        # anything else that is not 2xx.
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            if not 200 <= response.status < 300:
                raise SmsRefused(f"The text message provider answered {response.status}.")
