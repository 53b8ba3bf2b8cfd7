"""The life of a snapshot: create (pending), build (building, then ready or failed, once),
build again (a new snapshot with the same request). The build is the snapshot's job
(`core.jobs`): claimed once, beating while it writes; beat's job sweep re-sends a build whose
message was lost and fails one whose worker died.

`export_to_files` is the streaming export itself, also used without a snapshot row by
`manage.py export_dataset` and `bench/export.py`."""

from __future__ import annotations

import gc
import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from annotation.datasets.rows import (
    arena_rows,
    demonstration_rows,
    ranking_rows,
    rankings_queryset,
)
from annotation.datasets.spec import DatasetError, Spec, Stats, card_build, card_markdown
from annotation.exports.writers import DatasetWriter, schema_for, sha256_file
from annotation.models import DatasetSnapshot, SnapshotSource, SnapshotStatus, TiesPolicy
from core.jobs import JobStatus, job_claim, job_enqueue, job_finish, job_heartbeat

HEARTBEAT_EVERY_S = 5.0  # a build writes its heartbeat at most this often


def snapshot_create(*, name: str, spec: Spec, user=None) -> DatasetSnapshot:
    """Store a pending snapshot and build it in the background (the `default` queue)."""
    spec.check()
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
        job_enqueue(job=snapshot)
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
    """pending -> building, by one worker: a duplicate message finds nothing to do (a build
    whose worker died is taken over by its redelivered message)."""
    return job_claim(model=DatasetSnapshot, pk=snapshot_id)


class _Reaped(Exception):
    """The reaper failed this build while it was still running (it had been silent too long)."""


def _heartbeat(snapshot_id: int) -> Callable[[int], None]:
    """A progress callback that records rows written and a heartbeat, at most every few
    seconds, and stops the build if beat has failed it meanwhile."""
    last = time.monotonic()
    snapshot = DatasetSnapshot(pk=snapshot_id)

    def beat(rows: int) -> None:
        nonlocal last
        if time.monotonic() - last < HEARTBEAT_EVERY_S:
            return
        last = time.monotonic()
        progress = {"done": rows, "unit": "rows"}
        if not job_heartbeat(job=snapshot, progress=progress, row_count=rows):
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
                "name": snapshot_download_name(snapshot, kind),
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
        return _finish(snapshot, status=JobStatus.FAILED, error=message[:2000], row_count=0)
    return _finish(
        snapshot,
        status=JobStatus.SUCCEEDED,
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
    if not job_finish(job=snapshot, **outcome):
        shutil.rmtree(snapshot_folder(snapshot), ignore_errors=True)
    snapshot.refresh_from_db()
    return snapshot


def snapshot_download_name(snapshot: DatasetSnapshot, kind: str) -> str:
    """The name a snapshot's file downloads as, and the one its card's snippet loads: saved
    side by side, the card and its data form a Hugging Face dataset folder as they are."""
    if kind == "card":
        return "README.md"
    return f"{slugify(snapshot.name) or 'dataset'}-{snapshot.pk}.{kind}"


def snapshot_preview(*, snapshot: DatasetSnapshot, rows: int = 5) -> list[dict]:
    """The first rows of a ready snapshot, as its JSONL file holds them."""
    with snapshot_file(snapshot=snapshot, kind="jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for _, line in zip(range(rows), lines, strict=False)]


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
