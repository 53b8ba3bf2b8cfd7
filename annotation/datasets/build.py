"""The life of a snapshot: create (pending), build (building, then ready or failed, once),
build again (a new snapshot with the same request), and beat's two safety nets: re-send builds
whose message was lost, fail builds whose worker died.

`export_to_files` is the streaming export itself, also used without a snapshot row by
`manage.py export_dataset` and `bench/export.py`."""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation.datasets.rows import (
    arena_rows,
    demonstration_rows,
    ranking_rows,
    rankings_queryset,
)
from annotation.datasets.spec import DatasetError, Spec, Stats, card_build, card_markdown
from annotation.exports.writers import DatasetWriter, schema_for, sha256_file
from annotation.models import DatasetSnapshot, SnapshotSource, SnapshotStatus, TiesPolicy
from core.queue import enqueue_on_commit, resend

HEARTBEAT_EVERY_S = 5.0  # a build writes its heartbeat at most this often


def snapshot_create(*, name: str, spec: Spec, user=None) -> DatasetSnapshot:
    """Store a pending snapshot and build it in the background (the `default` queue)."""
    spec.check()
    from annotation import tasks

    with transaction.atomic():
        snapshot = DatasetSnapshot.objects.create(
            name=(name or f"{spec.source}-{spec.format}")[:200],
            source=spec.source,
            project=spec.project,
            format=spec.format,
            style=spec.style,
            pairs=spec.pairs,
            ties=spec.ties,
            filters=spec.filters.as_json(),
            created_by=user,
        )
        enqueue_on_commit(tasks.snapshot_build, snapshot.pk)
    return snapshot


def snapshot_retry(*, snapshot: DatasetSnapshot, user=None) -> DatasetSnapshot:
    """Build a failed snapshot's request again, as a new snapshot: a snapshot leaves `pending`
    once, so the failed one stays as it is, with its error."""
    if snapshot.status != SnapshotStatus.FAILED:
        raise DatasetError("Only a failed snapshot can be built again.")
    return snapshot_create(name=snapshot.name, spec=Spec.of(snapshot), user=user)


def snapshot_list():
    """Snapshots newest first, for the list page and the API."""
    return DatasetSnapshot.objects.select_related("project", "created_by")


def snapshot_folder(snapshot: DatasetSnapshot) -> Path:
    return Path(settings.MEDIA_ROOT) / "datasets" / str(snapshot.pk)


def _claim(snapshot_id: int) -> bool:
    """pending -> building, exactly once: a redelivered task finds nothing to do."""
    return bool(
        DatasetSnapshot.objects.filter(
            pk=snapshot_id,
            status=SnapshotStatus.PENDING,
        ).update(status=SnapshotStatus.BUILDING, heartbeat_at=timezone.now())
    )


class _Reaped(Exception):
    """The reaper failed this build while it was still running (it had been silent too long)."""


def _heartbeat(snapshot_id: int) -> Callable[[int], None]:
    """A progress callback that records rows written and a heartbeat, at most every few
    seconds, and stops the build if beat has failed it meanwhile."""
    last = time.monotonic()

    def beat(rows: int) -> None:
        nonlocal last
        if time.monotonic() - last < HEARTBEAT_EVERY_S:
            return
        last = time.monotonic()
        alive = DatasetSnapshot.objects.filter(
            pk=snapshot_id,
            status=SnapshotStatus.BUILDING,
        ).update(heartbeat_at=timezone.now(), row_count=rows)
        if not alive:
            raise _Reaped

    return beat


def snapshot_build(*, snapshot_id: int) -> DatasetSnapshot:
    """Build a pending snapshot (the Celery task's one call): stream the rows into JSONL and
    Parquet, hash them, write the card; on any error, fail it with a readable reason."""
    if not _claim(snapshot_id):
        return DatasetSnapshot.objects.get(pk=snapshot_id)
    snapshot = DatasetSnapshot.objects.select_related("project", "created_by").get(pk=snapshot_id)
    folder = snapshot_folder(snapshot)
    try:
        spec = Spec.of(snapshot)
        shutil.rmtree(folder, ignore_errors=True)  # left over from a crashed build
        folder.mkdir(parents=True)
        paths = {kind: folder / f"{snapshot.format}.{kind}" for kind in ("jsonl", "parquet")}
        stats = export_to_files(spec=spec, paths=paths, progress=_heartbeat(snapshot_id))
        if stats.rows == 0:
            raise DatasetError("No rows match these filters.")
        files = {
            kind: {
                "name": path.name,
                "bytes": path.stat().st_size,
                "sha256": stats.content_hash if kind == "jsonl" else sha256_file(path),
            }
            for kind, path in paths.items()
        }
        card = card_build(snapshot=snapshot, spec=spec, stats=stats, files=files)
        (folder / "README.md").write_text(card_markdown(card), encoding="utf-8")
    except _Reaped:
        shutil.rmtree(folder, ignore_errors=True)
        snapshot.refresh_from_db()
        return snapshot
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable state, not a hang
        shutil.rmtree(folder, ignore_errors=True)
        message = str(exc) if isinstance(exc, DatasetError) else f"{type(exc).__name__}: {exc}"
        return _finish(snapshot, status=SnapshotStatus.FAILED, error=message[:2000], row_count=0)
    return _finish(
        snapshot,
        status=SnapshotStatus.READY,
        content_hash=stats.content_hash,
        row_count=stats.rows,
        card=card,
        files={
            kind: path.relative_to(settings.MEDIA_ROOT).as_posix() for kind, path in paths.items()
        },
    )


def _finish(snapshot: DatasetSnapshot, **outcome) -> DatasetSnapshot:
    """building -> ready or failed, only if the build is still ours (beat may have failed it
    while it was silent); a build that lost it leaves no files behind."""
    outcome["built_at"] = timezone.now()
    done = DatasetSnapshot.objects.filter(pk=snapshot.pk, status=SnapshotStatus.BUILDING).update(
        **outcome
    )
    if not done:
        shutil.rmtree(snapshot_folder(snapshot), ignore_errors=True)
    snapshot.refresh_from_db()
    return snapshot


def snapshots_reap_stale(*, older_than_s: int | None = None) -> int:
    """Fail the builds that have made no progress for `DATASET_BUILD_STALE_AFTER_S` (their
    worker died: a build writes a heartbeat every few seconds), so that nobody waits on them
    forever; "Build again" makes a new snapshot of the same request."""
    age = older_than_s if older_than_s is not None else settings.DATASET_BUILD_STALE_AFTER_S
    cutoff = timezone.now() - timedelta(seconds=age)
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    reaped = 0
    for snapshot in DatasetSnapshot.objects.filter(silent, status=SnapshotStatus.BUILDING):
        # One conditional update each: a build that has just beaten is left alone.
        if DatasetSnapshot.objects.filter(
            silent, pk=snapshot.pk, status=SnapshotStatus.BUILDING
        ).update(
            status=SnapshotStatus.FAILED,
            built_at=timezone.now(),
            row_count=0,
            error=f"The build stopped making progress (no sign of life for {age} s: its "
            "worker probably died). Build it again.",
        ):
            shutil.rmtree(snapshot_folder(snapshot), ignore_errors=True)
            reaped += 1
    return reaped


def snapshots_requeue(*, older_than_s: int = 120) -> int:
    """Send again the builds still pending after `older_than_s` (their message was lost, e.g.
    to a broker outage); claiming is exclusive, so a duplicate does nothing."""
    from annotation.tasks import snapshot_build as build_task

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    waiting = DatasetSnapshot.objects.filter(status=SnapshotStatus.PENDING, created_at__lt=cutoff)
    return len(resend(build_task, waiting, limit=100))


def snapshot_file(*, snapshot: DatasetSnapshot, kind: str) -> Path:
    """The absolute path of a ready snapshot's file (`jsonl`, `parquet` or `card`)."""
    if snapshot.status != SnapshotStatus.READY:
        raise DatasetError("This snapshot is not ready.")
    if kind == "card":
        return snapshot_folder(snapshot) / "README.md"
    if kind not in snapshot.files:
        raise DatasetError(f"No {kind} file in this snapshot.")
    return Path(settings.MEDIA_ROOT) / snapshot.files[kind]


def export_to_files(
    *, spec: Spec, paths: dict[str, Path], progress: Callable[[int], None] | None = None
) -> Stats:
    """Stream the rows of `spec` into the files of `paths` ({"jsonl"|"parquet": path}), calling
    `progress(rows written)` after each record batch."""
    spec.check()
    stats = Stats()
    margin = False
    if spec.source == SnapshotSource.RANKINGS:
        queryset = rankings_queryset(spec)
        # A margin column only when every judgment carries labels (TRL's RewardTrainer uses
        # it for every row; a pair whose answers lack a scale label gets margin 0).
        margin = spec.format == "preference" and (
            queryset.exists() and not queryset.filter(labels={}).exists()
        )
        rows = ranking_rows(spec, queryset, stats, margin=margin)
    elif spec.source == SnapshotSource.DEMONSTRATIONS:
        rows = demonstration_rows(spec, stats)
    else:
        rows = arena_rows(spec, stats)
    schema = schema_for(spec.format, spec.style, tie=spec.ties == TiesPolicy.KEEP, margin=margin)
    with _old_objects_frozen(), DatasetWriter(paths, schema, progress=progress) as writer:
        writer.write_all(rows)
    stats.rows, stats.content_hash = writer.rows, writer.jsonl_sha256
    return stats


@contextmanager
def _old_objects_frozen():
    """Keep the garbage collector off the objects that existed before the export (Django,
    pyarrow, pandas: hundreds of thousands): an export allocates millions of short-lived
    objects, and every collection of the oldest generation would walk them all again (about a
    quarter of the export's CPU time). Objects made during the export are collected as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
