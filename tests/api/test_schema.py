"""Schemathesis against the OpenAPI description the code generates: every operation, as a
token of every role (each with all its role's permissions), with positive and negative data.

For every request: never a 500; a status code, content type, headers and body as the
description says; and when the answer is a 4xx, no table gained or lost a row (the token's
last-use time is an update, not a row). Few examples per operation, to keep it fast; the
other tests of tests/api/ check what the answers say."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imrtrial.models import Role
from tests.api.conftest import make_token
from tests.security.conftest import build_world
from tests.security.test_fuzz import table_counts

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = settings(
    max_examples=6,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def load_schema():
    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = get_wsgi_application()
    return schema


@pytest.fixture
def wsgi_in_test_transaction(settings):
    """The WSGI application in this process, on the test's database connection. Django closes
    connections at the end of each request, which would end the test's transaction; the test
    client turns that off for its requests, and so does this fixture, for the WSGI calls."""
    settings.ALLOWED_HOSTS = ["*"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_the_description_lists_every_endpoint_of_the_api():
    paths = set(load_schema().raw_schema["paths"])
    assert {
        "/api/v1/metadata/",
        "/api/v1/records/",
        "/api/v1/forms/import/",
        "/api/v1/status/",
        "/api/v1/queries/",
        "/api/v1/queries/{query_pk}/answer/",
        "/api/v1/exports/",
        "/api/v1/exports/{id}/",
        "/api/v1/exports/{id}/download/",
        "/api/v1/randomize/",
    } <= paths


def conformance(operation, mode, headers):
    """A Hypothesis test of one operation, in one generation mode, with one token."""

    @EXAMPLES
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        before = table_counts()
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
        if 400 <= response.status_code < 500:
            after = table_counts()
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert changed == {}, (response.status_code, changed)

    return run


def test_every_operation_as_every_roles_token_conforms_and_writes_nothing_when_refused(
    db, wsgi_in_test_transaction, caplog
):
    caplog.set_level("CRITICAL", logger="django.request")
    world = build_world()
    schema = load_schema()
    tokens = {role: make_token(world.users[role], world.trial) for role in Role}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for role, text in tokens.items():
            headers = {"Authorization": f"Bearer {text}"}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    conformance(operation, mode, headers)()
                except (Exception, BaseExceptionGroup) as exc:  # collect every failing operation
                    failures.append((operation.label, role.value, mode.value, str(exc)[:1500]))
    assert failures == [], "\n\n".join(" ".join(f) for f in failures[:10])
