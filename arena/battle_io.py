"""Battles in and out of the database, in the public arena file format.

Import: CSV, JSONL or one JSON array (optionally .gz) with `model_a`, `model_b`, `winner` (and
optional category columns or flags, and style metadata: `conv_metadata` or the conversations),
read by `arena.battle_files`. Unknown model names become inactive contestants with an external
backend, so that their votes can be rated. One transaction: a file with a bad row stores nothing.

Export: the same columns plus the conversations and `conv_metadata`, as CSV, JSONL or one JSON
array (what FastChat's leaderboard code reads), streamed. Winners are written with FastChat's
labels: `model_a`, `model_b`, `tie`, `tie (bothbad)`.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from arena import battle_files, conv_metadata, ratings
from arena.battles import side_conversation
from arena.models import Backend, Battle, BattleMode, BattleSource, Contestant
from core.keyset import keyset_chunks

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
    "conv_metadata",
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


NAME_MAX = Contestant._meta.get_field("name").max_length


def _check_names(data: battle_files.Battles) -> None:
    """A name the registry cannot hold is refused, naming the first row that uses it (a name
    cut to fit would merge different models, or fail to be found again)."""
    for code, name in enumerate(data.models):
        if len(name) > NAME_MAX:
            uses = (data.model_a == code) | (data.model_b == code)
            row = int(np.argmax(uses)) + 1
            raise ValueError(
                f"battle {row}: the model name {name[:40]!r}... is {len(name)} characters long; "
                f"names may have at most {NAME_MAX}."
            )


def _read(path: str | Path, checks: battle_files.Checks) -> battle_files.Battles:
    """The battles of a file, with any failure to decode it as a ValueError saying why."""
    try:
        return battle_files.read_battles(path, checks=checks)
    except (OSError, EOFError, zlib.error) as exc:
        # gzip.BadGzipFile is an OSError; a truncated stream is an EOFError.
        raise ValueError(
            f"the file cannot be read as {Path(path).suffix or 'text'}: {exc}"
        ) from None
    except csv.Error as exc:
        raise ValueError(f"the file is not valid CSV: {exc}") from None


def _contestants_for(names: list[str]) -> dict[str, Contestant]:
    known = {c.name: c for c in Contestant.objects.filter(name__in=names)}
    missing = [n for n in names if n not in known]
    Contestant.objects.bulk_create(
        Contestant(name=n, display_name=n, backend=Backend.EXTERNAL, is_active=False)
        for n in missing
    )
    return {c.name: c for c in Contestant.objects.filter(name__in=names)}


class UnknownModels(ValueError):
    """The file names models the registry does not hold, and creating them was not asked for."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        super().__init__(
            f"{len(names)} model name{'s are' if len(names) != 1 else ' is'} not registered: "
            f'{shown}. Tick "Register unknown model names" to import them as external '
            "contestants, or correct the names in the file."
        )


@transaction.atomic
def battles_import(
    *, path: str | Path, skip_self_battles: bool = False, create_unknown: bool = True
) -> int:
    """Store every battle of a public arena file as a counted anonymous vote; returns the count.
    Raises ValueError naming the line of the first bad row (and stores nothing): a model name
    no contestant could have or too long for the registry, a model meeting itself (left out
    instead with `skip_self_battles`, for public releases that hold a few), or a file that
    cannot be decoded. Model names not yet registered become inactive external contestants,
    unless `create_unknown` is false: then UnknownModels lists them and nothing is stored."""
    checks = battle_files.STORE_CHECKS
    if skip_self_battles:
        checks = replace(checks, self_battles="skip")
    data = _read(path, checks)
    _check_names(data)
    if not create_unknown:
        known = set(Contestant.objects.filter(name__in=data.models).values_list("name", flat=True))
        if unknown := sorted(set(data.models) - known):
            raise UnknownModels(unknown)
    contestants = _contestants_for(data.models)
    ids = np.array([contestants[name].pk for name in data.models])
    winners = _winner_labels(data)
    categories = _categories(data)
    now = timezone.now()
    names = ratings.STYLE_FEATURES
    metadata = data.metadata

    def style(features, k, side) -> dict:
        if features is None:
            return {}
        kept = dict(zip(names, features[k].tolist(), strict=True))
        if metadata is not None and metadata[k] is not None:
            kept.update(conv_metadata.split(metadata[k], side))
        return kept

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
            style_a=style(data.features_a, k, "a"),
            style_b=style(data.features_b, k, "b"),
        )
        for k in range(len(data))
    )
    Battle.objects.bulk_create(batch, batch_size=5000)
    return len(data)


# FastChat's labels: its leaderboard code knows "tie (bothbad)", not the 2025 release's both_bad.
EXPORT_WINNER = {"both_bad": "tie (bothbad)"}


def _metadata(battle: Battle, conversation_a: list[dict], conversation_b: list[dict]):
    """conv_metadata from the answers when the battle has them (votes cast here), else from
    what an import kept; None when neither is there."""
    if conversation_a or conversation_b:
        return conv_metadata.from_conversations(conversation_a, conversation_b)
    return conv_metadata.join(battle.style_a, battle.style_b)


def battle_export_rows(queryset) -> Iterator[dict]:
    """One dict per voted battle, in the public arena format."""
    qs = (
        queryset.voted()
        .annotate(voted_key=Coalesce("voted_at", "created_at"))
        .select_related("contestant_a", "contestant_b")
        .prefetch_related("turns__generation_a", "turns__generation_b")
    )
    # Chunk by chunk, no cursor held open: the export streams for minutes while others vote.
    chunks = keyset_chunks(
        qs, keys=("voted_key", "pk"), key_of=lambda b: (b.voted_key, b.pk), size=2000
    )
    for battle in itertools.chain.from_iterable(chunks):
        turns = list(battle.turns.all())
        conversation_a = side_conversation(turns, "a")
        conversation_b = side_conversation(turns, "b")
        yield {
            "question_id": str(battle.public_id),
            "model_a": battle.contestant_a.name,
            "model_b": battle.contestant_b.name if battle.contestant_b else "",
            "winner": EXPORT_WINNER.get(battle.winner, battle.winner),
            "anony": battle.mode == BattleMode.ANONYMOUS,
            "category": battle.category,
            "categories": battle.categories,
            "tstamp": battle.voted_at.timestamp() if battle.voted_at else None,
            "conversation_a": conversation_a,
            "conversation_b": conversation_b,
            "conv_metadata": _metadata(battle, conversation_a, conversation_b),
            "counted": battle.is_counted,
            "excluded_reason": battle.excluded_reason,
        }


def stream_jsonl(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def stream_json_array(rows: Iterable[dict]) -> Iterator[str]:
    """One JSON array, a record a line (`pandas.read_json` and FastChat's clean_battle files)."""
    yield "["
    separator = "\n"
    for row in rows:
        yield separator + json.dumps(row, ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"


# A spreadsheet reads a cell starting with one of these as a formula (`=HYPERLINK(...)`).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A value as a CSV cell: lists and objects as JSON text, as the public releases write them;
    text that a spreadsheet would run as a formula behind a `'`, which makes it plain text."""
    if isinstance(value, list | dict):
        value = json.dumps(value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def stream_csv(rows: Iterable[dict]) -> Iterator[str]:
    """CSV with list columns as JSON text and formulas escaped (`csv_cell`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


ALLOWED_SUFFIXES = (".csv", ".jsonl", ".json", ".csv.gz", ".jsonl.gz", ".json.gz")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def battles_import_upload(*, upload, create_unknown: bool = False) -> int:
    """Import an uploaded file (Django UploadedFile): checked for type and size, then read from
    a temporary file so that gzip and large files stream."""
    import tempfile

    name = (upload.name or "").lower()
    suffix = next(
        (s for s in sorted(ALLOWED_SUFFIXES, key=len, reverse=True) if name.endswith(s)), ""
    )
    if not suffix:
        raise ValueError(f"{upload.name!r} is not a CSV, JSONL or JSON file (optionally .gz).")
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        return battles_import(path=tmp.name, create_unknown=create_unknown)
