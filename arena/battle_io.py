"""Battles in and out of the database, in the public arena file format.

Import: CSV or JSONL (optionally .gz) with `model_a`, `model_b`, `winner` (and optional category
columns or flags, and style metadata), read by `arena.battle_files`. Unknown model names become
inactive contestants with an external backend, so that their votes can be rated. One
transaction: a file with a bad row stores nothing.

Export: the same columns plus the conversations, as CSV or JSONL, streamed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from django.db import transaction
from django.utils import timezone

from arena import battle_files, ratings
from arena.battles import side_conversation
from arena.models import Backend, Battle, BattleMode, BattleSource, Contestant

EXPORT_COLUMNS = [
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "anony",
    "category",
    "categories",
    "tstamp",
    "conversation_a",
    "conversation_b",
    "counted",
    "excluded_reason",
]


def _winner_labels(data: battle_files.Battles) -> np.ndarray:
    labels = np.where(
        data.outcome == 1.0, "model_a", np.where(data.outcome == 0.0, "model_b", "tie")
    )
    return np.where(data.both_bad, "both_bad", labels)


def _categories(data: battle_files.Battles) -> list[list[str]]:
    names = [c for c in data.categories()]
    masks = {name: data.category_mask(name) for name in names}
    return [[name for name in names if masks[name][k]] for k in range(len(data))]


def _contestants_for(names: list[str]) -> dict[str, Contestant]:
    known = {c.name: c for c in Contestant.objects.filter(name__in=names)}
    missing = [n for n in names if n not in known]
    Contestant.objects.bulk_create(
        Contestant(name=n[:100], display_name=n, backend=Backend.EXTERNAL, is_active=False)
        for n in missing
    )
    return {c.name: c for c in Contestant.objects.filter(name__in=names)}


@transaction.atomic
def battles_import(*, path: str | Path) -> int:
    """Store every battle of a public arena file as a counted anonymous vote; returns the count.
    Raises ValueError naming the line of the first bad row (and stores nothing)."""
    data = battle_files.read_battles(path)
    contestants = _contestants_for(data.models)
    ids = np.array([contestants[name].pk for name in data.models])
    winners = _winner_labels(data)
    categories = _categories(data)
    now = timezone.now()
    names = ratings.STYLE_FEATURES

    def style(features, k) -> dict:
        return {} if features is None else dict(zip(names, features[k].tolist(), strict=True))

    batch = (
        Battle(
            mode=BattleMode.ANONYMOUS,
            source=BattleSource.IMPORT,
            contestant_a_id=int(ids[data.model_a[k]]),
            contestant_b_id=int(ids[data.model_b[k]]),
            winner=str(winners[k]),
            voted_at=now,
            created_at=now,
            categories=categories[k],
            category=categories[k][0] if categories[k] else "",
            style_a=style(data.features_a, k),
            style_b=style(data.features_b, k),
        )
        for k in range(len(data))
    )
    Battle.objects.bulk_create(batch, batch_size=5000)
    return len(data)


def battle_export_rows(queryset) -> Iterator[dict]:
    """One dict per voted battle, in the public arena format."""
    qs = (
        queryset.voted()
        .select_related("contestant_a", "contestant_b")
        .prefetch_related("turns__generation_a", "turns__generation_b")
        .order_by("voted_at", "pk")
    )
    for battle in qs.iterator(chunk_size=2000):
        turns = list(battle.turns.all())
        yield {
            "question_id": str(battle.public_id),
            "model_a": battle.contestant_a.name,
            "model_b": battle.contestant_b.name if battle.contestant_b else "",
            "winner": battle.winner,
            "anony": battle.mode == BattleMode.ANONYMOUS,
            "category": battle.category,
            "categories": battle.categories,
            "tstamp": battle.voted_at.timestamp() if battle.voted_at else None,
            "conversation_a": side_conversation(turns, "a"),
            "conversation_b": side_conversation(turns, "b"),
            "counted": battle.is_counted,
            "excluded_reason": battle.excluded_reason,
        }


def stream_jsonl(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def stream_csv(rows: Iterable[dict]) -> Iterator[str]:
    """CSV with list columns as JSON text, as the public releases write them."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


ALLOWED_SUFFIXES = (".csv", ".jsonl", ".json", ".csv.gz", ".jsonl.gz", ".json.gz")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def battles_import_upload(*, upload) -> int:
    """Import an uploaded file (Django UploadedFile): checked for type and size, then read from
    a temporary file so that gzip and large files stream."""
    import tempfile

    name = (upload.name or "").lower()
    suffix = next(
        (s for s in sorted(ALLOWED_SUFFIXES, key=len, reverse=True) if name.endswith(s)), ""
    )
    if not suffix:
        raise ValueError(f"{upload.name!r} is not a CSV or JSONL file (optionally .gz).")
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        return battles_import(path=tmp.name)
