"""API tokens: the token's user is cached briefly, and every change that matters clears it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from core.roles import user_role_grant

pytestmark = pytest.mark.django_db


def _me(api_client, key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api_client.get("/api/me/")


def test_a_known_token_is_read_once_then_served_from_the_cache(api_client, annotator):
    key = Token.objects.create(user=annotator).key
    assert _me(api_client, key).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _me(api_client, key).json() == {"username": "ann", "roles": ["annotator"]}
    assert not [q for q in queries.captured_queries if "authtoken_token" in q["sql"]]
    assert not [q for q in queries.captured_queries if "auth_group" in q["sql"]]


def test_a_revoked_token_is_refused_at_once(api_client, annotator):
    key = Token.objects.create(user=annotator).key
    assert _me(api_client, key).status_code == 200
    assert api_client.delete("/api/auth/token/").status_code == 204
    assert _me(api_client, key).status_code == 401


def test_a_new_role_and_a_deactivation_take_effect_at_once(api_client, annotator):
    key = Token.objects.create(user=annotator).key
    assert _me(api_client, key).json()["roles"] == ["annotator"]
    user_role_grant(user=annotator, role="reviewer")
    assert _me(api_client, key).json()["roles"] == ["annotator", "reviewer"]
    annotator.groups.clear()
    assert _me(api_client, key).json()["roles"] == []
    annotator.is_active = False
    annotator.save()
    assert _me(api_client, key).status_code == 401


def test_the_cache_can_be_turned_off(api_client, annotator, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    key = Token.objects.create(user=annotator).key
    assert _me(api_client, key).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _me(api_client, key).status_code == 200
    assert [q for q in queries.captured_queries if "authtoken_token" in q["sql"]]


def test_an_unknown_token_is_refused(api_client):
    assert _me(api_client, "0" * 40).status_code == 401


def test_the_token_user_carries_every_role_it_holds(api_client, annotator, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0  # every request reads the token's statement
    user_role_grant(user=annotator, role="reviewer")
    key = Token.objects.create(user=annotator).key
    with CaptureQueriesContext(connection) as queries:
        assert _me(api_client, key).json()["roles"] == ["annotator", "reviewer"]
    token_reads = [q for q in queries.captured_queries if "authtoken_token" in q["sql"]]
    assert len(token_reads) == 1  # the user and the roles in one statement
    annotator.is_superuser = True
    annotator.save()
    assert _me(api_client, key).json()["roles"] == [
        "admin",
        "annotator",
        "researcher",
        "reviewer",
    ]


def test_refusals_say_why(api_client, annotator, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    key = Token.objects.create(user=annotator).key
    assert _me(api_client, "f" * 40).json() == {"detail": "Invalid token."}
    type(annotator).objects.filter(pk=annotator.pk).update(is_active=False)
    assert _me(api_client, key).json() == {"detail": "User inactive or deleted."}
