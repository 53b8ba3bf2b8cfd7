"""API tokens: the token's user is cached briefly in the shared cache, every change that matters
clears it in every process at once, a new password revokes them, and they may expire."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core import authentication
from core.authentication import api_token_create
from core.models import TokenExpiry
from core.roles import user_role_grant
from tests.support.worker import database_url_for

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cached_tokens(settings):
    """The cache in front of the token's statement is on (it is by default with CACHE_URL)."""
    settings.API_TOKEN_CACHE_SECONDS = 60


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


def test_a_token_revoked_by_another_process_is_refused_at_once(transactional_db, annotator):
    """Two server processes share the cache (here the database's, the default): the one that
    cached the token's user refuses it as soon as the other one revokes it."""
    from rest_framework.test import APIClient

    api_client = APIClient()
    key = Token.objects.create(user=annotator).key
    assert _me(api_client, key).status_code == 200  # now cached in this process's view
    revoke = (
        "import django; django.setup();"
        "from rest_framework.authtoken.models import Token;"
        f"print(Token.objects.filter(key={key!r}).delete()[0])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "CACHE_URL": "",
        "API_TOKEN_CACHE_SECONDS": "60",
    }
    other = subprocess.run(
        [sys.executable, "-c", revoke], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert other.returncode == 0 and other.stdout.strip() == "1", other.stderr
    assert _me(api_client, key).status_code == 401


def test_a_user_read_just_before_a_revocation_is_never_served_after_it(
    api_client, annotator, monkeypatch
):
    """A request reads the token from the database, the token is revoked, then the request
    writes what it read into the cache: the next request is refused all the same."""
    key = Token.objects.create(user=annotator).key
    read = authentication._token_user

    def read_then_revoke(k):
        found = read(k)
        Token.objects.filter(key=k).delete()
        return found

    monkeypatch.setattr(authentication, "_token_user", read_then_revoke)
    assert _me(api_client, key).status_code == 200  # the racing request itself
    monkeypatch.setattr(authentication, "_token_user", read)
    assert _me(api_client, key).status_code == 401


def test_a_new_password_revokes_every_token_of_the_user(api_client, annotator):
    key = Token.objects.create(user=annotator).key
    assert _me(api_client, key).status_code == 200
    form = PasswordChangeForm(
        annotator,
        {
            "old_password": "pw-ann",
            "new_password1": "n3w-Secret!x",
            "new_password2": "n3w-Secret!x",
        },
    )
    assert form.is_valid(), form.errors
    form.save()
    assert not Token.objects.filter(user=annotator).exists()
    assert _me(api_client, key).status_code == 401
    key = Token.objects.create(user=annotator).key
    form = SetPasswordForm(annotator, {"new_password1": "0ther-Secret!y",
                                       "new_password2": "0ther-Secret!y"})  # fmt: skip
    assert form.is_valid(), form.errors
    form.save()
    assert _me(api_client, key).status_code == 401


def test_other_changes_to_the_user_keep_its_tokens(api_client, annotator):
    key = Token.objects.create(user=annotator).key
    annotator.first_name = "Ann"
    annotator.save()
    assert _me(api_client, key).status_code == 200
    # A hash upgrade at login (same password) is not a new password.
    annotator.check_password("pw-ann")
    annotator.save()
    assert _me(api_client, key).status_code == 200


def test_tokens_expire_api_token_ttl_days_after_their_creation(api_client, annotator, settings):
    key = Token.objects.create(user=annotator).key
    Token.objects.filter(key=key).update(created=timezone.now() - datetime.timedelta(days=31))
    assert _me(api_client, key).status_code == 200  # never, by default
    settings.API_TOKEN_TTL_DAYS = 30
    api_client.credentials()
    refused = _me(api_client, key)
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_a_token_with_its_own_lifetime_stops_working_when_it_ends(
    api_client, annotator, monkeypatch
):
    token = api_token_create(user=annotator, expires_in_days=2)
    ends = TokenExpiry.objects.get(token=token).expires_at
    assert timezone.now() + datetime.timedelta(days=1) < ends
    assert _me(api_client, token.key).status_code == 200  # and cached with its expiry
    later = ends + datetime.timedelta(seconds=1)
    monkeypatch.setattr(authentication.timezone, "now", lambda: later)
    assert _me(api_client, token.key).status_code == 401


def test_the_api_makes_a_token_with_a_lifetime_on_request(api_client, annotator):
    plain = api_client.post("/api/auth/token/", {"username": "ann", "password": "pw-ann"})
    assert plain.status_code == 200
    assert not TokenExpiry.objects.exists()
    again = api_client.post("/api/auth/token/", {"username": "ann", "password": "pw-ann"})
    assert again.json() == plain.json()  # the same token while it works
    dated = api_client.post(
        "/api/auth/token/", {"username": "ann", "password": "pw-ann", "expires_in_days": 7}
    )
    assert dated.status_code == 200 and dated.json() != plain.json()
    assert _me(api_client, plain.json()["token"]).status_code == 401  # replaced
    expiry = TokenExpiry.objects.get(token_id=dated.json()["token"]).expires_at
    assert abs(expiry - timezone.now() - datetime.timedelta(days=7)) < datetime.timedelta(hours=1)


def test_the_api_replaces_an_expired_token(api_client, annotator, settings):
    settings.API_TOKEN_TTL_DAYS = 1
    old = Token.objects.create(user=annotator).key
    Token.objects.filter(key=old).update(created=timezone.now() - datetime.timedelta(days=2))
    fresh = api_client.post("/api/auth/token/", {"username": "ann", "password": "pw-ann"})
    assert fresh.status_code == 200 and fresh.json()["token"] != old
