"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis), with
data that fits the schema and data that does not, every write included (as an admin): no
request may produce a server error or a response that contradicts the schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# Per operation, positive and negative together: the whole run stays within a couple of minutes.
CASES_PER_OPERATION = 16


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
    response = case.call(headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code < 500, (
        f"{case.operation.label} -> {response.status_code}: {response.text[:500]}\n"
        f"{case.as_curl_command()}"
    )
    case.validate_response(response, checks=[content_type_conformance, response_schema_conformance])


def test_the_fuzzer_covers_the_whole_api_writes_included():
    """On its own (no order between tests): the schema the fuzzer reads offers every endpoint
    family, reads and writes, so that the fuzz test above really exercises them."""
    operations = [result.ok() for result in schema.get_all_operations()]
    methods = {op.method.upper() for op in operations}
    paths = {op.path for op in operations}
    assert len(operations) >= 40
    assert {"GET", "POST", "PATCH", "DELETE"} <= methods
    for family in ("/api/contestants/", "/api/training/runs/", "/api/annotation/datasets/"):
        assert family in paths
