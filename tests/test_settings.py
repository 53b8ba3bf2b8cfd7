"""The settings module refuses malformed environment values at start-up, naming the variable."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start_django(**env_overrides):
    import os

    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
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
