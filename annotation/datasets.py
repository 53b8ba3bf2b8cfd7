"""Dataset snapshots: filters -> immutable, content-hashed files in the formats the ecosystem
reads (see docs/datasets.md).

`snapshot_create` stores a pending snapshot and queues its build after commit;
`snapshot_build` (the Celery task's one call) streams the rows out of the database in chunks into
JSONL and Parquet under `MEDIA_ROOT/datasets/<id>/`, then records the sha256 of the JSONL file
(the content hash), the row count and the dataset card, and marks the snapshot ready, or failed
with a readable error. A snapshot leaves `pending` once: it is never rebuilt or edited.

`export_to_files` is the same streaming export without a snapshot row, for
`manage.py export_dataset` and `bench/export.py`.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg
from django.utils import timezone

from annotation import quality
from annotation.exports import formats, pairs
from annotation.exports.writers import IDS, NAMES, DatasetWriter, schema_for, sha256_file
from annotation.models import (
    Completion,
    DatasetSnapshot,
    Demonstration,
    PairStrategy,
    Project,
    Prompt,
    Ranking,
    SnapshotSource,
    SnapshotStatus,
    SnapshotStyle,
    TiesPolicy,
)
from arena.models import Contestant

FORMATS_OF = {
    SnapshotSource.RANKINGS: {"preference", "kto", "sft", "hh"},
    SnapshotSource.DEMONSTRATIONS: {"sft"},
    SnapshotSource.ARENA: {"arena"},
}
IMPORTED = "(imported)"  # the annotator name of judgments imported from a public dataset
CHUNK = 1000  # rankings per database round trip: bounds memory, amortises the lookups


class DatasetError(ValueError):
    """A request that cannot become a dataset; the message is for the researcher."""


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    accepted_only: bool = False
    min_agreement: float | None = None  # per-item pairwise agreement, items with 2+ annotators
    gold_min: float | None = None  # annotators whose mean gold score reaches this
    categories: tuple[str, ...] = ()
    guidelines_versions: tuple[int, ...] = ()

    @classmethod
    def parse(cls, raw: dict | None) -> Filters:
        raw = dict(raw or {})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise DatasetError(f"Unknown filters: {', '.join(sorted(unknown))}.")
        try:
            out = cls(
                date_from=_date(raw.get("date_from")),
                date_to=_date(raw.get("date_to")),
                accepted_only=bool(raw.get("accepted_only", False)),
                min_agreement=_share(raw.get("min_agreement"), "min_agreement"),
                gold_min=_share(raw.get("gold_min"), "gold_min"),
                categories=tuple(sorted(str(c) for c in raw.get("categories") or [] if c)),
                guidelines_versions=tuple(
                    sorted(int(v) for v in raw.get("guidelines_versions") or [])),
            )
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"Bad filter: {exc}") from None
        if out.date_from and out.date_to and out.date_from > out.date_to:
            raise DatasetError("date_from is after date_to.")
        return out

    def as_json(self) -> dict:
        """Only the filters that are set, in a stable form (stored on the snapshot)."""
        out: dict = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, False, ()):
                continue
            out[name] = value.isoformat() if isinstance(value, date) else (
                list(value) if isinstance(value, tuple) else value)
        return out


def _date(value) -> date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _share(value, name: str) -> float | None:
    if value in (None, ""):
        return None
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must lie in 0..1")
    return number


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class Spec:
    """What to export: everything a snapshot stores about its request."""

    source: str
    format: str
    project: Project | None = None
    style: str = SnapshotStyle.STANDARD
    pairs: str = PairStrategy.ALL
    ties: str = TiesPolicy.DROP
    filters: Filters = field(default_factory=Filters)

    def check(self) -> None:
        if self.source not in SnapshotSource.values:
            raise DatasetError(f"Unknown source {self.source!r}.")
        if self.format not in FORMATS_OF[self.source]:
            allowed = ", ".join(sorted(FORMATS_OF[self.source]))
            raise DatasetError(f"A {self.source} dataset can be written as: {allowed}.")
        if self.source != SnapshotSource.ARENA and self.project is None:
            raise DatasetError("Choose a project.")
        if self.style not in SnapshotStyle.values:
            raise DatasetError(f"Unknown style {self.style!r}.")
        if self.pairs not in PairStrategy.values:
            raise DatasetError(f"Unknown pair strategy {self.pairs!r}.")
        if self.ties not in TiesPolicy.values:
            raise DatasetError(f"Unknown ties policy {self.ties!r}.")

    @classmethod
    def of(cls, snapshot: DatasetSnapshot) -> Spec:
        return cls(source=snapshot.source, format=snapshot.format, project=snapshot.project,
                   style=snapshot.style, pairs=snapshot.pairs, ties=snapshot.ties,
                   filters=Filters.parse(snapshot.filters))


@dataclass
class Stats:
    """What the card says about the rows, gathered while they stream (constant memory)."""

    rows: int = 0
    judgments: int = 0
    prompts: int = 0
    annotators: Counter = field(default_factory=Counter)
    guidelines_versions: set = field(default_factory=set)
    models: Counter = field(default_factory=Counter)
    categories: Counter = field(default_factory=Counter)
    agree: int = 0
    compared: int = 0
    items_shared: int = 0
    labels: Counter = field(default_factory=Counter)  # label/tie/winner -> rows

    def card(self) -> dict:
        return {
            "rows": self.rows,
            "judgments": self.judgments,
            "prompts": self.prompts,
            "annotators": len(self.annotators),
            "judgments_per_annotator": dict(self.annotators.most_common(100)),
            "agreement": {
                "pairwise_rate": self.agree / self.compared if self.compared else None,
                "comparisons": self.compared,
                "items_with_several_annotators": self.items_shared,
            },
            "guidelines_versions": sorted(self.guidelines_versions),
            "models": dict(self.models.most_common()),
            "categories": dict(self.categories.most_common()),
            "row_labels": dict(self.labels),
        }


# --------------------------------------------------------------------------- services


def snapshot_create(*, name: str, spec: Spec, user=None) -> DatasetSnapshot:
    """Store a pending snapshot and build it in the background (the `default` queue)."""
    spec.check()
    from annotation import tasks

    with transaction.atomic():
        snapshot = DatasetSnapshot.objects.create(
            name=(name or f"{spec.source}-{spec.format}")[:200], source=spec.source,
            project=spec.project, format=spec.format, style=spec.style, pairs=spec.pairs,
            ties=spec.ties, filters=spec.filters.as_json(), created_by=user,
        )
        tasks.snapshot_build.delay_on_commit(snapshot.pk)
    return snapshot


def snapshot_list():
    """Snapshots newest first, for the list page and the API."""
    return DatasetSnapshot.objects.select_related("project", "created_by")


def _claim(snapshot_id: int) -> bool:
    """pending -> building, exactly once: a redelivered task finds nothing to do."""
    return bool(DatasetSnapshot.objects.filter(
        pk=snapshot_id, status=SnapshotStatus.PENDING).update(status=SnapshotStatus.BUILDING))


def snapshot_folder(snapshot: DatasetSnapshot) -> Path:
    return Path(settings.MEDIA_ROOT) / "datasets" / str(snapshot.pk)


def snapshot_build(*, snapshot_id: int) -> DatasetSnapshot:
    if not _claim(snapshot_id):
        return DatasetSnapshot.objects.get(pk=snapshot_id)
    snapshot = DatasetSnapshot.objects.select_related("project").get(pk=snapshot_id)
    folder = snapshot_folder(snapshot)
    try:
        spec = Spec.of(snapshot)
        shutil.rmtree(folder, ignore_errors=True)  # left over from a crashed build
        folder.mkdir(parents=True)
        paths = {kind: folder / f"{snapshot.format}.{kind}" for kind in ("jsonl", "parquet")}
        stats = export_to_files(spec=spec, paths=paths)
        if stats.rows == 0:
            raise DatasetError("No rows match these filters.")
        files = {kind: path.relative_to(settings.MEDIA_ROOT).as_posix()
                 for kind, path in paths.items()}
        content_hash = sha256_file(paths["jsonl"])
        card = _card(snapshot, spec, stats, paths, content_hash)
        (folder / "README.md").write_text(card_markdown(card), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - any failure becomes a readable state, not a hang
        shutil.rmtree(folder, ignore_errors=True)
        message = str(exc) if isinstance(exc, DatasetError) else f"{type(exc).__name__}: {exc}"
        snapshot.status, snapshot.error = SnapshotStatus.FAILED, message[:2000]
        snapshot.built_at = timezone.now()
        snapshot.save(update_fields=["status", "error", "built_at"])
        return snapshot
    snapshot.status, snapshot.content_hash, snapshot.row_count = (
        SnapshotStatus.READY, content_hash, stats.rows)
    snapshot.card, snapshot.files, snapshot.built_at = card, files, timezone.now()
    snapshot.save(update_fields=[
        "status", "content_hash", "row_count", "card", "files", "built_at"])
    return snapshot


def snapshot_file(*, snapshot: DatasetSnapshot, kind: str) -> Path:
    """The absolute path of a ready snapshot's file (`jsonl`, `parquet` or `card`)."""
    if snapshot.status != SnapshotStatus.READY:
        raise DatasetError("This snapshot is not ready.")
    if kind == "card":
        return snapshot_folder(snapshot) / "README.md"
    if kind not in snapshot.files:
        raise DatasetError(f"No {kind} file in this snapshot.")
    return Path(settings.MEDIA_ROOT) / snapshot.files[kind]


def _card(snapshot, spec: Spec, stats: Stats, paths: dict, content_hash: str) -> dict:
    return {
        "name": snapshot.name,
        "snapshot_id": snapshot.pk,
        "source": spec.source,
        "project": spec.project.name if spec.project else None,
        "format": spec.format,
        "style": spec.style,
        "pairs": spec.pairs if spec.format in ("preference", "hh") else None,
        "ties": spec.ties if spec.format in ("preference", "hh") else None,
        "filters": spec.filters.as_json(),
        "created_by": snapshot.created_by.get_username() if snapshot.created_by else None,
        "created_at": snapshot.created_at.isoformat(),
        "content_hash": content_hash,
        "files": {kind: {"name": path.name, "bytes": path.stat().st_size,
                         "sha256": content_hash if kind == "jsonl" else sha256_file(path)}
                  for kind, path in paths.items()},
        **stats.card(),
    }


def card_markdown(card: dict) -> str:
    """A Hugging Face style dataset card: YAML front matter naming the data files, then prose."""
    files = card["files"]
    agreement = card["agreement"]["pairwise_rate"]
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        f"  data_files: {files['parquet']['name']}",
        "---",
        "",
        f"# {card['name']}",
        "",
        f"{card['rows']} rows of **{card['format']}** data ({card['style']}) from "
        f"{card['source']}" + (f" of project *{card['project']}*" if card["project"] else "")
        + f", snapshot #{card['snapshot_id']}, content hash `{card['content_hash']}`.",
        "",
        f"- judgments: {card['judgments']}; prompts: {card['prompts']}; "
        f"annotators: {card['annotators']}",
        f"- pairwise agreement: {'n/a' if agreement is None else f'{agreement:.3f}'} "
        f"over {card['agreement']['comparisons']} comparisons",
        f"- guideline versions: {', '.join(map(str, card['guidelines_versions'])) or 'n/a'}",
        f"- models: {', '.join(card['models']) or 'none'}",
        f"- pairs: {card['pairs'] or 'n/a'}; ties: {card['ties'] or 'n/a'}",
        f"- filters: `{json.dumps(card['filters'], sort_keys=True)}`",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("parquet", data_files="{files["parquet"]["name"]}", split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- streaming export


def export_to_files(*, spec: Spec, paths: dict[str, Path]) -> Stats:
    """Stream the rows of `spec` into the files of `paths` ({"jsonl"|"parquet": path})."""
    spec.check()
    stats = Stats()
    margin = False
    if spec.source == SnapshotSource.RANKINGS:
        queryset = rankings_queryset(spec)
        # A margin column only when every judgment carries labels (TRL's RewardTrainer uses
        # it for every row; a pair whose answers lack a scale label gets margin 0).
        margin = spec.format == "preference" and (
            queryset.exists() and not queryset.filter(labels={}).exists())
        rows = ranking_rows(spec, queryset, stats, margin=margin)
    elif spec.source == SnapshotSource.DEMONSTRATIONS:
        rows = demonstration_rows(spec, stats)
    else:
        rows = arena_rows(spec, stats)
    schema = schema_for(spec.format, spec.style, tie=spec.ties == TiesPolicy.KEEP, margin=margin)
    with DatasetWriter(paths, schema) as writer:
        writer.write_all(rows)
    stats.rows = writer.rows
    return stats


def _judgment_filters(qs, spec: Spec):
    """The snapshot filters shared by rankings and demonstrations."""
    f = spec.filters
    if f.accepted_only:
        qs = qs.accepted()
    if f.date_from:
        qs = qs.filter(created_at__date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(created_at__date__lte=f.date_to)
    if f.categories:
        qs = qs.filter(prompt__category__in=f.categories)
    if f.guidelines_versions:
        qs = qs.filter(guidelines_version__in=f.guidelines_versions)
    if f.gold_min is not None:
        qs = qs.filter(annotator_id__in=_gold_passing(spec.project, f.gold_min))
    return qs


def rankings_queryset(spec: Spec):
    qs = Ranking.objects.filter(project=spec.project, is_gold=False).live()
    return _judgment_filters(qs, spec)


def _gold_passing(project: Project, threshold: float):
    return (
        Ranking.objects.filter(project=project, is_gold=True, gold_score__isnull=False)
        .values("annotator_id").annotate(score=Avg("gold_score"))
        .filter(score__gte=threshold).values("annotator_id")
    )


@dataclass
class _Judgment:
    id: int
    prompt_id: int
    item_id: int | None
    annotator: str
    groups: list
    labels: dict
    guidelines_version: int
    all_bad: bool


def _item_groups(queryset) -> Iterator[list[_Judgment]]:
    """Rankings ordered by prompt and item, yielded one item's rankings at a time."""
    rows = queryset.order_by("prompt_id", "item_id", "id").values_list(
        "id", "prompt_id", "item_id", "annotator__username", "groups", "labels",
        "guidelines_version", "all_bad",
    )
    current: list[_Judgment] = []
    for row in rows.iterator(chunk_size=CHUNK * 2):
        judgment = _Judgment(*row)
        judgment.annotator = judgment.annotator or IMPORTED
        if current and (current[0].prompt_id, current[0].item_id) != (
                judgment.prompt_id, judgment.item_id):
            yield current
            current = []
        current.append(judgment)
    if current:
        yield current


def _batches(groups: Iterator[list[_Judgment]], size: int) -> Iterator[list[list[_Judgment]]]:
    batch: list[list[_Judgment]] = []
    count = 0
    for group in groups:
        batch.append(group)
        count += len(group)
        if count >= size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


class _Answer(NamedTuple):
    text: str
    model: str
    settings: str  # canonical JSON text


class _Prompt(NamedTuple):
    messages: list
    category: str
    text: str  # the prompt as one string, for the standard text formats


def _rows_by_id(table_sql: str, columns: str, ids: set[int]) -> list[tuple]:
    """`SELECT columns ... WHERE id in ids` in one query. On PostgreSQL the ids travel as one
    array parameter (`= ANY(%s)`): thousands of separate `IN` parameters cost more to build
    than the query takes to run."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Table and column names are this module's constants, never user input.
            sql = f"SELECT {columns} FROM {table_sql} WHERE t.id = ANY(%s::bigint[])"  # noqa: S608
            # An array literal: psycopg adapts a list of ints element by element, slowly.
            cursor.execute(sql, ["{" + ",".join(map(str, ids)) + "}"])
            return cursor.fetchall()
    return []


def _lookups(batch: list[list[_Judgment]]) -> tuple[dict, dict]:
    """The answers and prompts one batch of rankings needs, in two queries."""
    completion_ids = {m for group in batch for j in group for g in j.groups for m in g}
    prompt_ids = {group[0].prompt_id for group in batch}
    canonical: dict[str, str] = {}  # settings repeat from answer to answer: dump each once

    def settings_text(raw) -> str:
        key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
        if key not in canonical:
            value = json.loads(key) if isinstance(raw, str) else raw
            canonical[key] = json.dumps(value or {}, sort_keys=True)
        return canonical[key]

    if connection.vendor == "postgresql":
        answer_rows = _rows_by_id(
            f"{Completion._meta.db_table} t LEFT JOIN {Contestant._meta.db_table} k "
            "ON k.id = t.contestant_id", "t.id, t.text, k.name, t.settings::text", completion_ids)
        prompt_rows = [(pk, json.loads(m), c) for pk, m, c in _rows_by_id(
            f"{Prompt._meta.db_table} t", "t.id, t.messages::text, t.category", prompt_ids)]
    else:
        answer_rows = Completion.objects.filter(pk__in=completion_ids).values_list(
            "id", "text", "contestant__name", "settings")
        prompt_rows = Prompt.objects.filter(pk__in=prompt_ids).values_list(
            "id", "messages", "category")
    answers = {pk: _Answer(text, model or "", settings_text(raw))
               for pk, text, model, raw in answer_rows}
    prompts = {pk: _Prompt(messages, category, formats.messages_text(messages))
               for pk, messages, category in prompt_rows}
    return answers, prompts


def _agreement(group: list[_Judgment], stats: Stats) -> float | None:
    """Pairwise agreement among the annotators of one item (None with a single annotator)."""
    by_annotator = {j.annotator if j.annotator != IMPORTED else j.id: j.groups for j in group}
    if len(by_annotator) < 2:
        return None
    result = quality.pairwise_agreement({0: by_annotator})
    stats.items_shared += 1
    stats.agree += round((result.rate or 0.0) * result.comparisons)
    stats.compared += result.comparisons
    return result.rate


def ranking_rows(spec: Spec, queryset, stats: Stats, *, margin: bool) -> Iterator:
    """Rows (dicts) of `spec`, or, for standard preference pairs (the bulk of large exports),
    one Arrow record batch per chunk of rankings built column by column."""
    last_prompt = None
    min_agreement = spec.filters.min_agreement
    columnar = spec.format == "preference" and spec.style == SnapshotStyle.STANDARD
    for batch in _batches(_item_groups(queryset), CHUNK):
        answers, prompts = _lookups(batch)
        collector = _PairColumns(margin) if columnar else None
        for group in batch:
            rate = _agreement(group, stats)
            if min_agreement is not None and (rate is None or rate < min_agreement):
                continue
            prompt_id = group[0].prompt_id
            if prompt_id != last_prompt:
                stats.prompts += 1
                last_prompt = prompt_id
            prompt = prompts[prompt_id]
            stats.judgments += len(group)
            stats.categories[prompt.category or "(none)"] += 1
            for j in group:
                stats.annotators[j.annotator] += 1
                stats.guidelines_versions.add(j.guidelines_version)
            if collector is not None:
                for groups, judgments in _units(spec, group):
                    collector.add(spec, groups, judgments, prompt)
            else:
                yield from _group_rows(spec, group, answers, prompt, stats, margin)
        if collector is not None and collector.chosen:
            yield collector.batch(answers, stats)


class _PairColumns:
    """Standard preference pairs of one chunk, gathered as columns: per pair only two answer
    ids, a tie flag, a margin and the index of its unit (ranking or consensus); texts, models
    and settings are then gathered by vectorised `take`s, so Python does a few list appends
    per pair instead of building a 20-key dict (the export of 1M pairs is bound by this)."""

    def __init__(self, margin: bool):
        self.margin = margin
        self.chosen: list[int] = []
        self.rejected: list[int] = []
        self.tie: list[bool] = []
        self.margins: list[float] = []
        self.unit: list[int] = []
        self.units: list[tuple] = []  # (prompt text, prompt id, ranking ids, annotators, gv, cat)

    def add(self, spec: Spec, groups, judgments, prompt: _Prompt) -> None:
        if spec.pairs == PairStrategy.CONSENSUS:
            expanded = pairs.strict_pairs(groups) + (
                pairs.tie_pairs(groups) if spec.ties == TiesPolicy.KEEP else [])
        else:
            expanded = pairs.ranking_pairs(groups, strategy=spec.pairs, ties=spec.ties)
        if not expanded:
            return
        unit = len(self.units)
        self.units.append((
            prompt.text, judgments[0].prompt_id, [j.id for j in judgments],
            [j.annotator for j in judgments], max(j.guidelines_version for j in judgments),
            prompt.category,
        ))
        labels = judgments[0].labels if len(judgments) == 1 else {}
        for chosen, rejected, tie in expanded:
            self.chosen.append(chosen)
            self.rejected.append(rejected)
            self.tie.append(tie)
            self.unit.append(unit)
        if self.margin:
            self.margins.extend(pairs.margin(labels, p) or 0.0 for p in expanded)

    def batch(self, answers: dict, stats: Stats) -> pa.RecordBatch:
        ids = np.fromiter(answers, dtype=np.int64, count=len(answers))
        order = np.argsort(ids)
        ids = ids[order]
        values = list(answers.values())
        text = pa.array([values[k].text for k in order], pa.string())
        model = pa.array([values[k].model for k in order], pa.string())
        setting = pa.array([values[k].settings for k in order], pa.string())
        chosen = np.searchsorted(ids, np.asarray(self.chosen, dtype=np.int64))
        rejected = np.searchsorted(ids, np.asarray(self.rejected, dtype=np.int64))
        unit = pa.array(self.unit, pa.int64())
        units = list(zip(*self.units, strict=True))
        columns = {
            "prompt": pa.array(units[0], pa.string()).take(unit),
            "chosen": text.take(chosen), "rejected": text.take(rejected),
            "tie": pa.array(self.tie, pa.bool_()),
            "margin": pa.array(self.margins, pa.float64()) if self.margin else None,
            "prompt_id": pa.array(units[1], pa.int64()).take(unit),
            "chosen_id": pa.array(self.chosen, pa.int64()),
            "rejected_id": pa.array(self.rejected, pa.int64()),
            "chosen_model": model.take(chosen), "rejected_model": model.take(rejected),
            "chosen_settings": setting.take(chosen), "rejected_settings": setting.take(rejected),
            "ranking_ids": pa.array(units[2], IDS).take(unit),
            "annotators": pa.array(units[3], NAMES).take(unit),
            "guidelines_version": pa.array(units[4], pa.int64()).take(unit),
            "category": pa.array(units[5], pa.string()).take(unit),
        }
        ties = sum(self.tie)
        stats.labels["tie"] += ties
        stats.labels["strict"] += len(self.tie) - ties
        counts = np.bincount(np.concatenate([chosen, rejected]), minlength=len(ids))
        for k, n in enumerate(counts.tolist()):
            if n:
                stats.models[values[order[k]].model or "(human)"] += n
        return pa.RecordBatch.from_pydict({k: v for k, v in columns.items() if v is not None})


def _units(spec: Spec, group: list[_Judgment]) -> list[tuple[list, list[_Judgment]]]:
    """(tie groups, the judgments behind them): one per ranking, or one consensus per item."""
    if spec.pairs == PairStrategy.CONSENSUS:
        return [(pairs.consensus_groups([j.groups for j in group]), group)]
    return [(j.groups, [j]) for j in group]


def _group_rows(spec, group, answers, prompt: _Prompt, stats, margin) -> Iterator[dict]:
    messages = prompt.messages
    for groups, judgments in _units(spec, group):
        base = {
            "prompt_id": group[0].prompt_id,
            "ranking_ids": [j.id for j in judgments],
            "annotators": [j.annotator for j in judgments],
            "guidelines_version": max(j.guidelines_version for j in judgments),
            "category": prompt.category,
        }
        if spec.format in ("preference", "hh"):
            yield from _pair_rows(spec, groups, judgments, answers, messages, base, stats, margin)
        elif spec.format == "kto":
            yield from _kto_rows(spec, groups, judgments, answers, messages, base, stats)
        else:  # sft: the best answer of each ranking
            if judgments[0].all_bad or not groups:
                continue
            best = answers[groups[0][0]]
            stats.models[best.model or "(human)"] += 1
            yield {**formats.sft_row(messages, best.text, style=spec.style), **base,
                   "completion_id": groups[0][0], "demonstration_id": None,
                   "model": best.model, "settings": best.settings}


def _pair_rows(spec, groups, judgments, answers, messages, base, stats, margin):
    if spec.pairs == PairStrategy.CONSENSUS:
        expanded = pairs.strict_pairs(groups) + (
            pairs.tie_pairs(groups) if spec.ties == TiesPolicy.KEEP else [])
    else:
        expanded = pairs.ranking_pairs(groups, strategy=spec.pairs, ties=spec.ties)
    labels = judgments[0].labels if len(judgments) == 1 else {}
    for pair in expanded:
        chosen, rejected = answers[pair.chosen], answers[pair.rejected]
        if spec.format == "hh":
            row = formats.hh_row(messages, chosen.text, rejected.text)
        else:
            row = formats.preference_row(messages, chosen.text, rejected.text, style=spec.style)
        row.update(base)
        row.update(chosen_id=pair.chosen, rejected_id=pair.rejected,
                   chosen_model=chosen.model, rejected_model=rejected.model,
                   chosen_settings=chosen.settings, rejected_settings=rejected.settings,
                   tie=pair.tie)
        if margin:
            row["margin"] = pairs.margin(labels, pair) or 0.0
        stats.labels["tie" if pair.tie else "strict"] += 1
        for model in {chosen.model, rejected.model}:
            stats.models[model or "(human)"] += 1
        yield row


def _kto_rows(spec, groups, judgments, answers, messages, base, stats):
    """The best group is desirable and the worst undesirable; with `all_bad` every answer is
    undesirable. Middle groups say too little on their own and are left out."""
    if judgments[0].all_bad:
        marked = [(m, False) for g in groups for m in g]
    elif len(groups) >= 2:
        marked = [(m, True) for m in groups[0]] + [(m, False) for m in groups[-1]]
    else:
        marked = []
    for member, label in marked:
        answer = answers[member]
        stats.labels[str(label).lower()] += 1
        stats.models[answer.model or "(human)"] += 1
        yield {**formats.kto_row(messages, answer.text, label, style=spec.style), **base,
               "completion_id": member, "demonstration_id": None, "model": answer.model,
               "settings": answer.settings}


def demonstration_rows(spec: Spec, stats: Stats) -> Iterator[dict]:
    qs = _judgment_filters(Demonstration.objects.filter(project=spec.project).live(), spec)
    rows = qs.order_by("prompt_id", "id").values_list(
        "id", "prompt_id", "annotator__username", "text", "edited_from_id",
        "guidelines_version", "prompt__messages", "prompt__category", "source",
    )
    last_prompt = None
    for pk, prompt_id, who, text, edited, version, messages, category, source in rows.iterator(
            chunk_size=CHUNK):
        who = who or (f"{IMPORTED} {source}".strip() if source else IMPORTED)
        if prompt_id != last_prompt:
            stats.prompts, last_prompt = stats.prompts + 1, prompt_id
        stats.judgments += 1
        stats.annotators[who] += 1
        stats.guidelines_versions.add(version)
        stats.categories[category or "(none)"] += 1
        yield {**formats.sft_row(messages, text, style=spec.style), "prompt_id": prompt_id,
               "completion_id": edited, "demonstration_id": pk, "model": "", "settings": "{}",
               "ranking_ids": [], "annotators": [who], "guidelines_version": version,
               "category": category}


def arena_rows(spec: Spec, stats: Stats) -> Iterator[dict]:
    from arena.battle_io import battle_export_rows
    from arena.models import Battle

    f = spec.filters
    qs = Battle.objects.counted()
    if f.date_from:
        qs = qs.filter(voted_at__date__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(voted_at__date__lte=f.date_to)
    if f.categories:
        qs = qs.filter(category__in=f.categories)
    for row in battle_export_rows(qs):
        stats.judgments += 1
        stats.labels[row["winner"]] += 1
        stats.models[row["model_a"]] += 1
        stats.models[row["model_b"]] += 1
        stats.categories[row["category"] or "(none)"] += 1
        yield row

