"""The text message senders: the provider's API is a real HTTP server on this machine."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.error import HTTPError, URLError

import pytest

from selfreport import sms


class Provider(BaseHTTPRequestHandler):
    """Answers every POST with `status`, keeping what it was sent."""

    status = 202
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Authorization"], json.loads(body)))
        self.send_response(self.status)
        if self.status == 302:
            self.send_header("Location", "/elsewhere")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self):  # where a followed redirect would land, answering yes
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def provider(settings):
    Provider.received = []
    Provider.status = 202
    server = HTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_BACKEND = "selfreport.sms.HttpSender"
    settings.SMS_API_URL = f"http://127.0.0.1:{server.server_port}/messages"
    settings.SMS_API_TOKEN = "provider-token"
    settings.SMS_FROM = "Research"
    yield Provider
    server.shutdown()
    server.server_close()


def test_the_provider_gets_the_message_with_the_token(provider):
    sms.get_sender().send("+4512345678", "Hello")
    assert provider.received == [
        ("Bearer provider-token", {"to": "+4512345678", "from": "Research", "text": "Hello"})
    ]


def test_a_provider_error_raises(provider):
    provider.status = 500
    with pytest.raises(HTTPError):
        sms.get_sender().send("+4512345678", "Hello")
    assert len(provider.received) == 1  # tried once: the outbox, not the sender, retries


def test_a_redirect_is_not_acceptance(provider):
    """urllib would follow it as a GET without the message, and take the 200 for a yes."""
    provider.status = 302
    with pytest.raises(HTTPError):
        sms.get_sender().send("+4512345678", "Hello")
    assert len(provider.received) == 1


def test_a_refused_connection_raises(settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.SMS_BACKEND = "selfreport.sms.HttpSender"
    settings.SMS_API_URL = f"http://127.0.0.1:{port}/messages"
    with pytest.raises(URLError):
        sms.get_sender().send("+4512345678", "Hello")


def test_only_an_http_address_is_opened(settings):
    settings.SMS_BACKEND = "selfreport.sms.HttpSender"
    settings.SMS_API_URL = "file:///etc/passwd"
    with pytest.raises(sms.SmsRefused):
        sms.get_sender()


def test_the_backend_is_the_class_the_settings_name(settings):
    settings.SMS_BACKEND = "selfreport.sms.LocmemSender"
    sms.outbox.clear()
    sms.get_sender().send("+31612345678", "Hoi")
    assert sms.outbox == [("+31612345678", "Hoi")]
