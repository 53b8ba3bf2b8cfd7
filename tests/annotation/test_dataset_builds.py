"""The life of a snapshot build: heartbeat and progress, the reaper for builds whose worker
died, building a failed snapshot again, and re-sending builds whose message was lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import datasets
from annotation.datasets import DatasetError, Filters, Spec
from annotation.datasets import build as build_module
from annotation.models import DatasetSnapshot, Ranking, SnapshotStatus
from core import jobs
from tests.annotation.factories import CompletionFactory, PromptFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def judged(project, annotator):
    """Three prompts, each with one ranking of three answers: 9 preference pairs."""
    for _ in range(3):
        prompt = PromptFactory(project=project)
        answers = [CompletionFactory(prompt=prompt) for _ in range(3)]
        Ranking.objects.create(
            project=project, prompt=prompt, annotator=annotator, groups=[[a.pk] for a in answers]
        )
    return project


def _pending(project, **filters) -> DatasetSnapshot:
    spec = Spec(
        source="rankings", format="preference", project=project, filters=Filters.parse(filters)
    )
    return datasets.snapshot_create(name="prefs", spec=spec)


def _building(project, *, silent_for_s: int) -> DatasetSnapshot:
    """A snapshot that a worker claimed and then stopped beating for `silent_for_s`."""
    snapshot = _pending(project)
    DatasetSnapshot.objects.filter(pk=snapshot.pk).update(
        status=SnapshotStatus.BUILDING,
        heartbeat_at=timezone.now() - timedelta(seconds=silent_for_s),
    )
    return snapshot


def test_a_build_records_its_heartbeat_and_progress_while_it_writes(judged, monkeypatch):
    monkeypatch.setattr(build_module, "HEARTBEAT_EVERY_S", 0.0)
    monkeypatch.setattr(datasets.rows, "CHUNK", 1)  # one record batch per ranking
    seen = []
    original = build_module._heartbeat

    def watching(snapshot_id):
        beat = original(snapshot_id)

        def record(rows):
            beat(rows)
            seen.append(
                DatasetSnapshot.objects.values_list("status", "row_count", "heartbeat_at").get(
                    pk=snapshot_id
                )
            )

        return record

    monkeypatch.setattr(build_module, "_heartbeat", watching)
    snapshot = datasets.snapshot_build(snapshot_id=_pending(judged).pk)
    assert snapshot.status == SnapshotStatus.READY, snapshot.error
    assert [(status, rows) for status, rows, _ in seen] == [
        ("building", 3),
        ("building", 6),
        ("building", 9),
    ]
    assert all(beat is not None for *_, beat in seen)
    assert snapshot.row_count == 9


def _reap() -> int:
    return jobs.jobs_reap(kind=jobs.job_kind_of(DatasetSnapshot))


def test_the_reaper_fails_a_build_whose_worker_went_silent(judged, settings, media):
    settings.DATASET_BUILD_STALE_AFTER_S = 300
    dead = _building(judged, silent_for_s=301)
    (media / "datasets" / str(dead.pk)).mkdir(parents=True)  # a half-written build
    alive = _building(judged, silent_for_s=10)

    assert _reap() == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == SnapshotStatus.FAILED
    assert "stopped making progress" in dead.error and "Build it again" in dead.error
    assert dead.built_at is not None
    assert not (media / "datasets" / str(dead.pk)).exists()
    assert alive.status == SnapshotStatus.BUILDING
    assert _reap() == 0  # nothing twice


def test_the_reaper_leaves_pending_ready_and_failed_snapshots_alone(judged, settings):
    settings.DATASET_BUILD_STALE_AFTER_S = 60
    old = timezone.now() - timedelta(days=1)
    ready = datasets.snapshot_build(snapshot_id=_pending(judged).pk)
    pending = _pending(judged)
    DatasetSnapshot.objects.update(created_at=old, heartbeat_at=old)
    assert _reap() == 0
    assert DatasetSnapshot.objects.get(pk=ready.pk).status == SnapshotStatus.READY
    assert DatasetSnapshot.objects.get(pk=pending.pk).status == SnapshotStatus.PENDING


def test_a_build_that_was_reaped_meanwhile_stops_and_keeps_its_failure(judged, media, monkeypatch):
    monkeypatch.setattr(build_module, "HEARTBEAT_EVERY_S", 0.0)
    monkeypatch.setattr(datasets.rows, "CHUNK", 1)
    snapshot = _pending(judged)
    original = build_module._heartbeat

    def reaped_after_first_batch(snapshot_id):
        beat = original(snapshot_id)

        def record(rows):
            DatasetSnapshot.objects.filter(pk=snapshot_id).update(
                status=SnapshotStatus.FAILED, error="reaped"
            )
            beat(rows)

        return record

    monkeypatch.setattr(build_module, "_heartbeat", reaped_after_first_batch)
    result = datasets.snapshot_build(snapshot_id=snapshot.pk)
    assert (result.status, result.error, result.content_hash) == (
        SnapshotStatus.FAILED,
        "reaped",
        "",
    )
    assert not (media / "datasets" / str(snapshot.pk)).exists()


def test_a_failed_snapshot_is_built_again_as_a_new_snapshot(judged, researcher):
    failed = _building(judged, silent_for_s=10_000)
    _reap()
    failed.refresh_from_db()

    again = datasets.snapshot_retry(snapshot=failed, user=researcher)
    assert again.pk != failed.pk
    assert (again.name, again.source, again.format, again.filters) == (
        failed.name,
        failed.source,
        failed.format,
        failed.filters,
    )
    built = datasets.snapshot_build(snapshot_id=again.pk)
    assert built.status == SnapshotStatus.READY and built.row_count == 9
    assert DatasetSnapshot.objects.get(pk=failed.pk).status == SnapshotStatus.FAILED


def test_only_a_failed_snapshot_can_be_built_again(judged):
    ready = datasets.snapshot_build(snapshot_id=_pending(judged).pk)
    with pytest.raises(DatasetError):
        datasets.snapshot_retry(snapshot=ready)


def test_the_build_again_button_makes_a_new_snapshot(researcher_client, judged):
    failed = _building(judged, silent_for_s=10_000)
    _reap()
    page = researcher_client.get(f"/annotation/datasets/{failed.pk}/")
    assert b"Build again" in page.content and b"stopped making progress" in page.content

    response = researcher_client.post(f"/annotation/datasets/{failed.pk}/retry/")
    again = DatasetSnapshot.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302
    assert response["Location"] == f"/annotation/datasets/{again.pk}/"
    assert again.status == SnapshotStatus.PENDING


def test_builds_whose_message_was_lost_are_sent_again(judged, settings, monkeypatch):
    settings.JOB_RESEND_AFTER_S = 120
    sent = []
    monkeypatch.setattr(jobs, "publish", lambda *args, **_: sent.append(args) or True)
    lost = _pending(judged)
    fresh = _pending(judged)
    DatasetSnapshot.objects.filter(pk=lost.pk).update(
        enqueued_at=timezone.now() - timedelta(minutes=10)
    )
    assert jobs.jobs_sweep()["annotation.datasetsnapshot"]["resent"] == 1
    assert sent == [
        (
            "annotation.tasks.snapshot_build",
            lost.pk,
        )
    ]
    assert fresh.pk not in [pk for _, pk in sent]


def test_a_build_whose_worker_died_is_taken_over_by_its_redelivered_message(judged):
    dead = _building(judged, silent_for_s=10_000)
    built = datasets.snapshot_build(snapshot_id=dead.pk)
    assert built.status == SnapshotStatus.READY and built.row_count == 9
    assert built.attempts == 1  # made building by hand above; the redelivery took it once
