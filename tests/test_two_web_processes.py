"""Two web servers against one Redis (the "scale" profile's layout): a rate limit counts the
requests of both, and a token revoked through one is refused at once by the other, which had
it cached."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from core.authentication import api_token_create
from tests.support.postgres import free_port
from tests.support.web import wait_healthy
from tests.support.worker import database_url_for

ROOT = Path(__file__).resolve().parents[1]
REDIS_CACHE = "redis://127.0.0.1:6379/13"  # a database of its own, emptied first
PER_MINUTE = 3

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_cache():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_CACHE)
    try:
        client.flushdb()
    except redis.ConnectionError:
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    yield REDIS_CACHE
    client.flushdb()


@pytest.fixture
def two_servers(redis_cache, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "CACHE_URL": redis_cache,
        "CELERY_BROKER_URL": "filesystem://",  # nothing consumes; a queued answer may wait
        "VAR_DIR": str(tmp_path / "var"),
        "DJANGO_DEBUG": "0",
        "GENERATIONS_PER_MINUTE": str(PER_MINUTE),
        "LOG_LEVEL": "ERROR",
    }
    servers = []
    for name in ("a", "b"):
        port = free_port()
        log = open(tmp_path / f"gunicorn-{name}.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi",
             "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"],
            cwd=ROOT, env=env, stdout=log, stderr=log,
        )  # fmt: skip
        servers.append((f"http://127.0.0.1:{port}", proc, log))
    try:
        for url, proc, log in servers:
            wait_healthy(url, proc, Path(log.name))
        yield [url for url, _, _ in servers]
    finally:
        for _, proc, log in servers:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()


def test_a_rate_limit_and_a_token_revocation_hold_across_two_web_processes(
    two_servers, annotator, tiny_contestant
):
    import requests

    a, b = two_servers
    token = api_token_create(user=annotator).key
    auth = {"Authorization": f"Token {token}"}
    # Both servers read the token and keep its user in the shared cache.
    for server in (a, b):
        assert requests.get(f"{server}/api/me/", headers=auth, timeout=30).status_code == 200

    # The limit counts per minute: start a fresh minute rather than straddle two.
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.5)
    ask = {"contestant": "tiny-llama", "messages": [{"role": "user", "content": "hi"}]}
    answers = [
        requests.post(f"{server}/api/generations/", json=ask, headers=auth, timeout=30)
        for server in (a, b, a)
    ]
    assert [r.status_code for r in answers] == [202] * PER_MINUTE, [r.text for r in answers]
    refused = requests.post(f"{b}/api/generations/", json=ask, headers=auth, timeout=30)
    assert refused.status_code == 429, refused.text
    assert f"limit {PER_MINUTE} per minute" in refused.json()["detail"]

    assert requests.delete(f"{a}/api/auth/token/", headers=auth, timeout=30).status_code == 204
    assert requests.get(f"{b}/api/me/", headers=auth, timeout=30).status_code == 401
