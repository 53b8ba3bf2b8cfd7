"""SQLite under load (the default `make run`): while a snapshot build streams its rows and
writes its heartbeat, other connections keep writing and people keep signing in. Nobody gets
"database is locked" and the build succeeds.

The writes are interleaved on purpose, not by luck: every time the build reports progress
(between two reads of its rows, just before its heartbeat write) another thread commits a new
prompt and signs a user in, and the build waits for that to finish. A read cursor left open
across the heartbeat (Django's `.iterator()`) fails exactly there.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from annotation import datasets
from annotation.datasets import Spec
from annotation.datasets import build as build_module
from annotation.models import Prompt, Ranking, SnapshotStatus
from tests.annotation.factories import CompletionFactory, ProjectFactory, PromptFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's locking only"),
]
EVENT_WAIT_S = 120  # a safety net for a hung thread, far above any real wait


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_sqlite_is_in_wal_mode_with_immediate_writes_and_a_busy_timeout():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert connection.transaction_mode == "IMMEDIATE"
    assert connection.settings_dict["OPTIONS"]["timeout"] >= 5


class Writer(threading.Thread):
    """On each request: commit a prompt and sign a user in, from its own connection."""

    def __init__(self, project, username: str, password: str):
        super().__init__(daemon=True)
        self.project, self.username, self.password = project, username, password
        self.go, self.done, self.stop = threading.Event(), threading.Event(), threading.Event()
        self.errors: list[str] = []
        self.writes = 0

    def run(self):
        from django.test import Client

        try:
            while self.go.wait(EVENT_WAIT_S) and not self.stop.is_set():
                self.go.clear()
                try:
                    Prompt.objects.create(
                        project=self.project,
                        messages=[{"role": "user", "content": f"w{self.writes}"}],
                    )
                    response = Client().post(
                        "/accounts/login/", {"username": self.username, "password": self.password}
                    )
                    if response.status_code != 302:
                        self.errors.append(f"login answered {response.status_code}")
                    self.writes += 1
                except Exception as exc:  # noqa: BLE001 - every failure is the test's finding
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                finally:
                    self.done.set()
        finally:
            connection.close()


def test_a_build_writer_and_logins_share_sqlite_without_a_lock_error(
    monkeypatch, django_user_model
):
    project = ProjectFactory(overlap=1)
    user = django_user_model.objects.create_user(username="busy", password="pw-busy-1")
    for _ in range(12):
        prompt = PromptFactory(project=project)
        answers = [CompletionFactory(prompt=prompt) for _ in range(2)]
        Ranking.objects.create(
            project=project, prompt=prompt, annotator=user, groups=[[a.pk] for a in answers]
        )
    monkeypatch.setattr(build_module, "HEARTBEAT_EVERY_S", 0.0)
    monkeypatch.setattr(datasets.rows, "CHUNK", 2)  # several reads, a heartbeat after each
    writer = Writer(project, "busy", "pw-busy-1")
    writer.start()
    original = build_module._heartbeat

    def interleaved(snapshot_id):
        beat = original(snapshot_id)

        def progress(rows):
            writer.done.clear()
            writer.go.set()
            assert writer.done.wait(EVENT_WAIT_S), "the writer never finished its write"
            beat(rows)

        return progress

    monkeypatch.setattr(build_module, "_heartbeat", interleaved)
    spec = Spec(source="rankings", format="preference", project=project)
    snapshot = datasets.snapshot_create(name="under load", spec=spec)
    built = datasets.snapshot_build(snapshot_id=snapshot.pk)
    writer.stop.set()
    writer.go.set()
    writer.join(EVENT_WAIT_S)

    assert writer.errors == []
    assert built.status == SnapshotStatus.READY, built.error
    assert built.row_count == 12
    assert writer.writes >= 3  # the writes really did interleave with several reads
