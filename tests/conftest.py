"""Shared fixtures. Personas, one per role, each with a logged-in client:

- annotator: writes demonstrations and rankings;
- reviewer: accepts or rejects judgments (also an annotator);
- researcher: builds datasets and reads leaderboards;
- admin_user: manages models, projects and training runs;
- outsider: signed in, but holds no role.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API + live_server
# Tests fit boards on a handful of votes: every model is ranked and style control is fitted
# unless a test of those thresholds sets them. Workers started by tests read these; this
# process's settings are already loaded, so `_small_boards` sets them there.
BOARD_THRESHOLDS = {"ARENA_MIN_VOTES": 1, "ARENA_STYLE_MIN_BATTLES": 1}
for _name, _value in BOARD_THRESHOLDS.items():
    os.environ.setdefault(_name, str(_value))

from tests.support.tiny_model import build_tiny_chat_model  # noqa: E402

# Tests under these paths need no database; the PostgreSQL pass leaves them out.
PURE_PATHS = (
    "tests/training/core/",
    "tests/arena/test_ratings.py",
    "tests/arena/test_battle_files.py",
    "tests/annotation/test_exports.py",
    "tests/evaluation/test_metrics.py",
    "tests/evaluation/test_alpaca_formats.py",
    "tests/evaluation/test_compute_winrate.py",
)
ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the real worker shows the end of the worker's log."""
    outcome = yield
    report = outcome.get_result()
    worker = getattr(item, "funcargs", {}).get("celery_worker")
    if report.failed and worker is not None:
        report.sections.append(("celery worker log (last lines)", worker.log()))


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        if rel.startswith(PURE_PATHS):
            item.add_marker(pytest.mark.pure)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Tests log in and make users by the hundred: a cheap hash keeps that quick (password
    guessing is slowed down by core.login_throttle, not by the hash, in the tests)."""
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()


_DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}


@pytest.fixture(autouse=True)
def _small_boards(settings):
    for name, value in BOARD_THRESHOLDS.items():
        setattr(settings, name, value)


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Each test starts with an empty cache: rate counters and cached API users of one test
    (whose ids the next test's users may reuse) must not carry over. The default cache is a
    table of the database: a test without the database cannot have written to it."""
    from django.conf import settings
    from django.core.cache import cache

    if request.node.get_closest_marker("django_db") or _DB_FIXTURES & set(request.fixturenames):
        request.getfixturevalue("_django_db_helper")
    elif settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
        return
    cache.clear()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-llama"))


def _make_user(django_user_model, username: str, *roles: str):
    from core.roles import user_role_grant

    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    for role in roles:
        user_role_grant(user=user, role=role)
    return user


@pytest.fixture
def annotator(db, django_user_model):
    return _make_user(django_user_model, "ann", "annotator")


@pytest.fixture
def reviewer(db, django_user_model):
    return _make_user(django_user_model, "rev", "annotator", "reviewer")


@pytest.fixture
def researcher(db, django_user_model):
    return _make_user(django_user_model, "res", "researcher")


@pytest.fixture
def admin_user(db, django_user_model):
    return _make_user(django_user_model, "adm", "admin")


@pytest.fixture
def outsider(db, django_user_model):
    return django_user_model.objects.create_user(username="out", password="pw-out")


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def annotator_client(annotator):
    return _client_for(annotator)


@pytest.fixture
def admin_client_(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def researcher_client(researcher):
    return _client_for(researcher)


@pytest.fixture
def outsider_client(outsider):
    return _client_for(outsider)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def tiny_contestant(db, tiny_model_dir):
    from arena.services import contestant_create

    return contestant_create(
        name="tiny-llama",
        display_name="Tiny Llama",
        backend="local",
        model_path=str(tiny_model_dir),
        temperature=0.0,
        max_new_tokens=8,
        organization="Test Lab",
    )


@pytest.fixture(scope="session")
def tiny_judge_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A reward model (tiny Llama with a seeded scalar head), saved once."""
    import torch

    from training.core.common import load_reward_model, load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-judge")
    tokenizer = load_tokenizer(tiny_model_dir)
    torch.manual_seed(0)
    model = load_reward_model(tiny_model_dir, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def judge(db, tiny_judge_dir):
    """A registered judge with the tiny reward model."""
    from training.models import RewardModel

    return RewardModel.objects.create(name="tiny-judge", path=str(tiny_judge_dir))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's chromium, never a downloaded browser."""
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def eager_tasks():
    """Queued tasks run at once in this process, when they are published (after commit: use
    with `django_db(transaction=True)`), for tests of a view that waits for a worker's answer
    without starting a worker."""
    from config.celery import app

    app.loader.import_default_modules()  # the apps' tasks, registered as a worker would
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real worker process consuming every queue of the test database's broker."""
    from django.db import connection

    from tests.support.worker import WorkerProcess, database_url_for

    with django_db_blocker.unblock():
        url = database_url_for(connection.settings_dict)
    worker = WorkerProcess(database_url=url).start()
    yield worker
    worker.stop()
