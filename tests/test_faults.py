"""Faults: with the broker down, battles, votes, judgments and generation requests still save
and the requests succeed; the work is sent again once the broker is back; a generation is never
run twice at once; a worker killed mid-answer leaves a failed answer, not a battle waiting
forever; with the database down, requests are answered 503 at once. (A real database restart
under load: tests/test_db_restart.py.)"""

import os
import re
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from arena import services
from arena.models import Battle, Generation, GenerationStatus
from core.jobs import jobs_sweep
from tests.support.worker import database_url_for

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import django
django.setup()
from django.contrib.auth.models import User
from arena import battles
from arena.models import Generation
user = User.objects.get(username="ann")
actor = battles.Actor(user=user, ip="10.1.1.1")
battle = battles.battle_start(actor=actor, prompt="hello while the broker is down")
Generation.objects.update(status="succeeded", output="fine")
battles.battle_vote(battle=battle, actor=actor, winner="tie")
print("saved", battle.public_id)
"""


@pytest.mark.django_db(transaction=True)
def test_battles_and_votes_save_while_the_broker_is_down(
    annotator, tiny_contestant, tiny_model_dir
):
    from django.db import connection

    services.contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "saved" in result.stdout
    battle = Battle.objects.get()
    assert battle.winner == "tie" and battle.is_counted
    assert Generation.objects.count() == 2


JUDGMENT_SCRIPT = """
import django
django.setup()
from django.contrib.auth.models import User
from rest_framework.test import APIClient
from annotation import services
from annotation.models import Project
project = Project.objects.get(slug="broker-down")
services.candidates_generate(project=project, prompts=[project.prompts.get(source="later")])
client = APIClient()
client.force_authenticate(User.objects.get(username="ann"))
task = client.post("/api/annotation/projects/broker-down/tasks/next/")
assert task.status_code == 200, task.content
url = f"/api/annotation/tasks/{task.json()['id']}/ranking/"
ranked = client.post(url, {"order": "B > A"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
assert ranked.status_code == 201, ranked.content
print("saved", ranked.json()["id"])
"""


@pytest.mark.django_db(transaction=True)
def test_judgments_and_candidate_requests_save_while_the_broker_is_down(
    annotator, tiny_contestant, tiny_model_dir
):
    from django.db import connection

    from annotation.models import Item, Ranking
    from tests.annotation.factories import ProjectFactory, PromptFactory, ranking_item

    second = services.contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    project = ProjectFactory(slug="broker-down", overlap=1, candidates_per_prompt=2)
    project.contestants.set([tiny_contestant, second])
    ranking_item(project, k=2)
    PromptFactory(project=project, source="later")  # its answers are asked for with no broker
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run([sys.executable, "-c", JUDGMENT_SCRIPT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ranking = Ranking.objects.get()
    assert f"saved {ranking.id}" in result.stdout and ranking.annotator == annotator
    waiting = Item.objects.get(prompt__source="later")
    assert not waiting.is_ready  # until the re-sent generations are answered
    assert Generation.objects.filter(status=GenerationStatus.QUEUED).count() == 2


@pytest.mark.django_db
def test_generations_left_queued_are_sent_again(tiny_contestant, settings, monkeypatch):
    from core import jobs

    settings.JOB_RESEND_AFTER_S = 60
    sent = []
    monkeypatch.setattr(jobs, "publish", lambda *args, **_: sent.append(args) or True)
    old = Generation.objects.create(contestant=tiny_contestant, messages=[])
    Generation.objects.create(contestant=tiny_contestant, messages=[])  # just queued: left alone
    Generation.objects.filter(pk=old.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    assert jobs.jobs_sweep()["arena.generation"] == {"reaped": 0, "resent": 1}
    assert sent == [("arena.tasks.generation_run", old.pk)]


@pytest.mark.django_db
def test_a_generation_another_worker_is_answering_is_not_claimed_again(tiny_contestant):
    busy = Generation.objects.create(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "hi"}],
        status=GenerationStatus.RUNNING,
        heartbeat_at=timezone.now(),
    )
    services.generation_execute(generation_id=busy.pk)
    busy.refresh_from_db()
    assert busy.status == GenerationStatus.RUNNING and busy.attempts == 0
    Generation.objects.filter(pk=busy.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    services.generation_execute(generation_id=busy.pk)  # its worker died: taken over
    busy.refresh_from_db()
    assert busy.status == GenerationStatus.SUCCEEDED


# --------------------------------------------------------------------------- a worker killed


BATTLE_SCRIPT = """
import django
django.setup()
from django.contrib.auth.models import User
from arena import battles
actor = battles.Actor(user=User.objects.get(username="ann"), ip="10.1.1.2")
print(battles.battle_start(actor=actor, prompt="take your time").public_id)
"""


def _private_broker(folder: Path) -> dict[str, str]:
    """A filesystem broker of this test's own: no other worker of the session takes its tasks."""
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {"CELERY_BROKER_URL": "filesystem://", "CELERY_FILESYSTEM_BROKER_DIR": str(folder)}


def _in_child(script: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, *script.split("\0")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def _finished(generation: Generation, worker) -> None:
    from tests.support.worker import wait_for

    try:
        wait_for(lambda: Generation.objects.get(pk=generation.pk).is_finished, timeout=90)
    except TimeoutError:
        pytest.fail(f"generation {generation.pk} never finished. Worker log:\n{worker.log()}")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_battle_whose_worker_is_killed_mid_answer_ends_failed_not_stuck(
    annotator, annotator_client, api_client, tmp_path, settings
):
    """kill -9 of the worker while it waits on a model: the answer it held is lost with it (the
    broker does not hand it out again within the test), the other side is answered by the next
    worker, and the reaper fails the lost one, so the page shows an error and no vote opens."""
    from django.db import connection

    from tests.support.slow_endpoint import SlowEndpoint
    from tests.support.worker import WorkerProcess, wait_for

    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **_private_broker(tmp_path / "broker"),
    }
    with SlowEndpoint() as endpoint:
        for side in ("slow-a", "slow-b"):
            services.contestant_create(name=side, display_name=side.title(), backend="openai",
                                       endpoint_url=endpoint.base_url, endpoint_model="stub",
                                       max_retries=0, request_timeout_s=300)  # fmt: skip
        first = WorkerProcess(database_url=env["DATABASE_URL"], env=env).start()
        public_id = _in_child(f"-c\0{BATTLE_SCRIPT}", env)
        try:
            assert endpoint.arrived.wait(90), "no generation started:\n" + first.log()
            running = wait_for(lambda: Generation.objects.filter(status="running").first())
        finally:
            first.kill()
        endpoint.released.set()
        second = WorkerProcess(database_url=env["DATABASE_URL"], env=env)
        second.start(purge=False)  # the other side's task still waits in the queue
        try:
            other = Generation.objects.exclude(pk=running.pk).get()
            _finished(other, second)
            running.refresh_from_db()
            assert running.status == GenerationStatus.RUNNING, "nothing should have touched it"
        finally:
            second.stop()
    # Beat's sweep, as it runs once the silent answer's heartbeat is older than the setting.
    settings.GENERATION_STALE_AFTER_S = 10
    jobs_sweep(now=running.heartbeat_at + timedelta(seconds=10.5))
    running.refresh_from_db()
    other.refresh_from_db()
    print(
        f"\nkilled worker's answer: {running.status} after {running.attempts} attempt(s) "
        f"({running.error!r}); other side: {other.status}; endpoint requests {endpoint.requests}"
    )
    assert running.status == GenerationStatus.FAILED and "worker stopped" in running.error
    assert other.status == GenerationStatus.SUCCEEDED, other.error
    _assert_failed_battle_cannot_be_voted(public_id, annotator, annotator_client, api_client)


def _assert_failed_battle_cannot_be_voted(public_id, annotator, annotator_client, api_client):
    page = annotator_client.get(f"/arena/battles/{public_id}/").content.decode()
    # The voter reads a plain failure; the reason (above, on the row) is for admins.
    assert "This answer failed." in page and "worker stopped answering" not in page
    votes = re.findall(r'<button name="winner"[^>]*>', page)
    assert len(votes) == 4 and all("disabled" in b for b in votes), votes
    assert 'hx-trigger="every 1s"' not in page  # finished: the page stops polling
    api_client.force_authenticate(annotator)
    vote = api_client.post(f"/api/battles/{public_id}/vote/", {"winner": "tie"}, format="json")
    assert vote.status_code == 409 and "failed" in vote.json()["detail"]
    assert not Battle.objects.get().is_voted


# --------------------------------------------------------------------------- database down


@pytest.fixture
def database_down(monkeypatch):
    """Every query fails as it does while PostgreSQL restarts (the end-to-end check with a real
    restart is tests/test_db_restart.py, on PostgreSQL)."""
    from django.db import OperationalError
    from django.db.backends.utils import CursorWrapper

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused: is the server running on 127.0.0.1:5432?")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)


@pytest.mark.django_db
def test_while_the_database_is_down_every_answer_is_503_saying_so(
    api_client, annotator, client, database_down
):
    api_client.force_authenticate(annotator)
    answers = {
        "api": api_client.get("/api/me/"),
        "health": client.get("/healthz"),
        "openai": api_client.get("/v1/models"),
        "page": client.get("/"),
    }
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 503)
    assert all(r["Retry-After"] == "5" for r in answers.values())
    assert "try again" in answers["api"].json()["detail"]
    assert "try again" in answers["health"].json()["detail"]
    assert answers["openai"].json()["error"]["type"] == "server_error"
    assert answers["page"]["Content-Type"].startswith("text/plain")
    assert b"try again" in answers["page"].content


@pytest.mark.parametrize(
    ("message", "outage"),
    [
        ("database is locked", True),
        ("unable to open database file", True),
        ("no such table: arena_battle", False),
        ('near "SELEC": syntax error', False),
    ],
)
def test_only_sqlite_failures_that_pass_are_answered_as_an_outage(message, outage):
    from django.db import OperationalError

    from core.middleware import database_unavailable

    try:
        try:
            raise sqlite3.OperationalError(message)
        except sqlite3.OperationalError as cause:
            raise OperationalError(message) from cause
    except OperationalError as exc:
        assert database_unavailable(exc) is outage


def test_a_closed_connection_is_an_outage_and_other_errors_are_not():
    from django.db import InterfaceError

    from core.middleware import database_unavailable

    assert database_unavailable(InterfaceError("connection already closed"))
    assert not database_unavailable(ValueError("no"))
