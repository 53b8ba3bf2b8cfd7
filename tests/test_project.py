"""Project-wide checks: migrations match the models, the API schema is valid, the compose file
parses, and the demo loads."""

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_models_have_no_missing_migrations():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail("Models changed without a migration:\n" + out.getvalue())


def test_openapi_schema_is_valid_and_lists_the_endpoints(client):
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)
    for path in ("/api/contestants/", "/api/generations/", "/v1/chat/completions"):
        assert path in schema["paths"]


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html


def test_the_compose_file_has_no_default_secret_key_and_a_shared_cache():
    app = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())["x-app"]["environment"]
    assert app["DJANGO_SECRET_KEY"] == "${DJANGO_SECRET_KEY:?set DJANGO_SECRET_KEY}"
    assert app["CACHE_URL"].startswith("${CACHE_URL:-redis://")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_is_valid():
    def config(**env):
        return subprocess.run(
            ["docker-compose", "-f", "docker/compose.yaml", "config", "-q"],
            cwd=ROOT,
            env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = config(DJANGO_SECRET_KEY="a-real-secret")
    assert result.returncode == 0, result.stderr
    scaled = config(DJANGO_SECRET_KEY="a-real-secret", COMPOSE_PROFILES="scale")
    assert scaled.returncode == 0, scaled.stderr
    refused = config(DJANGO_SECRET_KEY=None)  # no default key: compose refuses to start
    assert refused.returncode != 0 and "DJANGO_SECRET_KEY" in refused.stderr
    services = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())["services"]
    assert {"postgres", "redis", "web", "worker", "gpu-worker", "beat"} <= set(services)


def test_the_scale_profile_balances_two_web_replicas_behind_a_trusted_proxy():
    compose = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())
    services = compose["services"]
    assert services["web-b"]["profiles"] == services["proxy"]["profiles"] == ["scale"]
    proxy_address = services["proxy"]["networks"]["default"]["ipv4_address"]
    assert compose["x-app"]["environment"]["TRUSTED_PROXIES"] == (
        "${TRUSTED_PROXIES:-" + proxy_address + "/32}"
    )
    upstreams = (ROOT / "docker/nginx.conf").read_text()
    assert "server web:8000" in upstreams and "server web-b:8000" in upstreams
    assert "$proxy_add_x_forwarded_for" in upstreams


@pytest.mark.django_db
def test_seed_demo_loads_users_contestants_and_prompts_and_can_run_twice():
    from django.contrib.auth.models import User

    from annotation.models import Prompt
    from arena.models import Contestant
    from core.roles import user_has_role

    call_command("seed_demo", "--arena-votes=", stdout=io.StringIO())
    call_command("seed_demo", "--arena-votes=", stdout=io.StringIO())
    assert Contestant.objects.filter(backend="smollm2").count() >= 3
    prompts = Prompt.objects.filter(project__slug="demo-assistant")
    assert 45 <= prompts.count() <= 60
    assert set(prompts.values_list("category", flat=True)) >= {
        "coding",
        "math",
        "writing",
        "advice",
        "facts",
        "safety",
    }
    for role in ("annotator", "reviewer", "researcher", "admin"):
        user = User.objects.get(username=role)
        assert user.check_password("demo-password")
        assert user_has_role(user, role)
    assert not user_has_role(User.objects.get(username="annotator"), "reviewer")


@pytest.mark.django_db
def test_seed_demo_loads_an_arena_vote_file_through_the_worker_task(tmp_path):
    from arena.models import Battle, LeaderboardSnapshot
    from config.celery import app

    votes = tmp_path / "votes.csv"
    votes.write_text("model_a,model_b,winner\n" + "m1,m2,model_a\nm2,m1,tie\n" * 20)
    app.conf.task_always_eager = True  # run the queued task here instead of on a worker
    try:
        call_command("seed_demo", f"--arena-votes={votes}", stdout=io.StringIO())
        call_command("seed_demo", f"--arena-votes={votes}", stdout=io.StringIO())  # once only
    finally:
        app.conf.task_always_eager = False
    assert Battle.objects.filter(source="import").count() == 40
    assert LeaderboardSnapshot.objects.filter(category="").exists()
