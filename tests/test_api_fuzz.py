"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis): no request
may produce a server error or a response that contradicts the schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CASES_PER_OPERATION = 12
tried: list[str] = []


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calling the WSGI app directly fires request_finished, which would close the database
    connection the test runs in; Django's own test client detaches the handler the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_token(db, admin_user, tiny_contestant):
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=admin_user).key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_every_generated_request_without_a_server_error(case, admin_token):
    tried.append(case.operation.label)
    response = case.call(headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code < 500, (
        f"{case.operation.label} -> {response.status_code}: {response.text[:500]}\n"
        f"{case.as_curl_command()}"
    )
    case.validate_response(response, checks=[content_type_conformance, response_schema_conformance])


def test_fuzzing_tried_cases():
    """Runs after the fuzz test (same module): says how many cases were tried."""
    print(f"\nschemathesis: {len(tried)} cases over {len(set(tried))} operations")
    assert len(set(tried)) >= 10
