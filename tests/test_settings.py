"""The settings module refuses malformed environment values at start-up, naming the variable."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start_django(*, code: str = "print('started')", **env_overrides):
    import os

    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/x"),
        ("DATABASE_URL", "postgres://user@host:5432/"),
        ("CELERY_BROKER_URL", "carrier-pigeon://coop"),
        ("DJANGO_DEBUG", "maybe"),
        ("TORCH_NUM_THREADS", "zero"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"),
        ("DJANGO_SECURE_PROXY_SSL_HEADER", "X Forwarded Proto"),
        ("DJANGO_SECURE_HSTS_SECONDS", "a year"),
        ("API_TOKEN_TTL_DAYS", "-1"),
    ],
)
def test_malformed_environment_value_stops_start_up_with_its_name(variable, value):
    result = _start_django(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_defaults_start_on_a_fresh_machine(tmp_path):
    result = _start_django(VAR_DIR=str(tmp_path), DATABASE_URL="", CELERY_BROKER_URL="")
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def _settings_of(*names: str, **env) -> dict:
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = _start_django(code=code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("key", ["insecure-local-development-key-change-me-in-production",
                                 "change-me"])  # fmt: skip
def test_a_published_secret_key_without_debug_stops_start_up(key):
    result = _start_django(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DJANGO_SECRET_KEY" in result.stderr


def test_the_development_key_serves_debug_only(tmp_path):
    assert _settings_of("SECRET_KEY", DJANGO_SECRET_KEY="", DJANGO_DEBUG="1",
                        VAR_DIR=str(tmp_path))["SECRET_KEY"].startswith("insecure-")  # fmt: skip


def test_without_a_key_a_fresh_machine_makes_its_own_and_keeps_it(tmp_path):
    env = {"DJANGO_SECRET_KEY": "", "DJANGO_DEBUG": "0", "VAR_DIR": str(tmp_path)}
    first = _settings_of("SECRET_KEY", **env)["SECRET_KEY"]
    assert len(first) >= 50 and not first.startswith("insecure-")
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # the owner's alone
    assert _settings_of("SECRET_KEY", **env)["SECRET_KEY"] == first


def test_production_may_insist_on_a_key_from_the_environment(tmp_path):
    result = _start_django(DJANGO_SECRET_KEY="", DJANGO_REQUIRE_SECRET_KEY="1",
                           VAR_DIR=str(tmp_path))  # fmt: skip
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr


def test_https_settings_come_from_the_environment():
    names = ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
             "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
             "SECURE_PROXY_SSL_HEADER", "TRUSTED_PROXIES")  # fmt: skip
    assert _settings_of(*names) == dict.fromkeys(names[:-2], False) | {
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_PROXY_SSL_HEADER": None,
        "TRUSTED_PROXIES": [],
    }
    assert _settings_of(
        *names,
        DJANGO_SECURE_SSL_REDIRECT="1",
        DJANGO_SECURE_HSTS_SECONDS="31536000",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        DJANGO_SECURE_HSTS_PRELOAD="1",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        TRUSTED_PROXIES="10.0.0.0/8, 192.168.1.1",
    ) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SESSION_COOKIE_SECURE": True,  # follows the redirect to HTTPS
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "TRUSTED_PROXIES": ["10.0.0.0/8", "192.168.1.1"],
    }


def test_the_default_cache_is_shared_by_every_process():
    """Without CACHE_URL, a table of the database (not a per-process cache); token entries
    are then not worth a cache read, which costs as much as the token's statement."""
    found = _settings_of("CACHES", "API_TOKEN_CACHE_SECONDS", CACHE_URL="")
    assert found["CACHES"]["default"]["BACKEND"].endswith("DatabaseCache")
    assert found["API_TOKEN_CACHE_SECONDS"] == 0
    found = _settings_of("CACHES", "API_TOKEN_CACHE_SECONDS", CACHE_URL="redis://cache:6379/1")
    assert found["CACHES"]["default"]["BACKEND"].endswith("RedisCache")
    assert found["API_TOKEN_CACHE_SECONDS"] == 10
