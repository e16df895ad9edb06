"""Tokens and clients for the web API tests. `token(user, perms=None, trial=None)` makes a token
through the service (every permission the user holds, unless `perms`), enrolling the user in
two-factor sign-in first when their role needs it; `api(text)` is a client sending it."""

import pytest
from django.test import Client

from api import services
from imrtrial import twofactor
from tests.factories import make_totp_device


def make_token(user, trial, perms=None, days=30, name="test"):
    if twofactor.requires_two_factor(user) and not twofactor.is_enrolled(user):
        make_totp_device(user)
    held = services.permissions_held(user, trial)
    _, text = services.create_token(
        user, trial, name=name, permissions=held if perms is None else perms, days=days
    )
    return text


class Api:
    """A test client that sends a token with every request."""

    def __init__(self, text):
        self.client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {text}")

    def get(self, path, data=None, **kw):
        return self.client.get(path, data, **kw)

    def post(self, path, data=None, **kw):
        return self.client.post(path, data or {}, content_type="application/json", **kw)


@pytest.fixture
def token(study):
    def make(user, perms=None, trial=None, **kw):
        return make_token(user, trial or study, perms, **kw)

    return make


@pytest.fixture
def api():
    return Api


def body(response):
    """A response's content, streamed or not, as text."""
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()
