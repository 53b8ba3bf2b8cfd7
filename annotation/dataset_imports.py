"""Imports of public preference data into a project: Anthropic HH transcripts, TRL preference
files, and public arena battle files (delegated to `arena.battle_io`).

A preference pair becomes a prompt (reused when the project already has the same messages), two
completions and one ranking `[[chosen], [rejected]]` (or `[[a, b]]` for a tie) with origin
`import` and no annotator. Every row is checked first; bad rows are reported with their line
numbers and, unless the caller asks to skip them, nothing is stored. The writes are one
transaction.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils.text import slugify

from annotation import services
from annotation.exports import formats
from annotation.imports import messages_hash
from annotation.models import (
    Completion,
    CompletionSource,
    Project,
    Prompt,
    Ranking,
    RankingOrigin,
)

IMPORT_FORMATS = ("hh", "preference", "arena")
MAX_REPORTED = 20


class DatasetImportError(ValueError):
    """The file was refused and nothing was stored; `problems` are (line, reason)."""

    def __init__(self, problems: list[tuple[int, str]], total: int | None = None):
        self.problems = problems
        total = total if total is not None else len(problems)
        shown = "; ".join(f"line {line}: {reason}" for line, reason in problems[:MAX_REPORTED])
        more = f" (and {total - MAX_REPORTED} more)" if total > MAX_REPORTED else ""
        super().__init__(f"{total} bad row(s), nothing was stored: {shown}{more}")


@dataclass
class Pair:
    line: int
    prompt: list[dict]
    chosen: str
    rejected: str
    tie: bool = False
    chosen_model: str = ""
    rejected_model: str = ""
    category: str = ""


@dataclass
class ImportReport:
    prompts: int = 0
    completions: int = 0
    rankings: int = 0
    battles: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def project_for_import(*, name: str, user=None) -> Project:
    """The project called `name` (or with that slug), created when it does not exist."""
    found = Project.objects.filter(name=name).first() or Project.objects.filter(slug=name).first()
    if found:
        return found
    return services.project_create(
        name=name, slug=slugify(name)[:100] or "imported", created_by=user
    )


def dataset_import(
    *, fmt: str, path: str | Path, project: Project | None = None, user=None, skip_bad: bool = False
) -> ImportReport:
    if fmt == "arena":
        from arena.battle_io import battles_import

        try:
            return ImportReport(battles=battles_import(path=path))
        except ValueError as exc:
            raise DatasetImportError([(0, str(exc))]) from None
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"unknown import format {fmt!r}; expected one of {IMPORT_FORMATS}")
    if project is None:
        raise ValueError("a project is needed to import preference pairs")
    parse = _hh_pair if fmt == "hh" else _preference_pair
    good, bad = [], []
    for line, record in read_records(path):
        try:
            good.append(parse(line, record))
        except (ValueError, TypeError, KeyError) as exc:
            bad.append((line, str(exc).strip("'\"")))
    if bad and not skip_bad:
        raise DatasetImportError(bad)
    if not good:
        raise DatasetImportError(bad or [(0, "the file holds no rows")])
    report = pairs_store(project=project, pairs=good, source=Path(path).name)
    report.skipped = bad
    return report


# --------------------------------------------------------------------------- reading


def read_records(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) from JSONL (optionally gzipped), a JSON list, or Parquet (row
    numbers from 1). A line that is not a JSON object is reported, not skipped."""
    path = Path(path)
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for n, record in enumerate(table.to_pylist(), start=1):
            yield n, record
        return
    opener = gzip.open if magic[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for n, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield n, {"__error__": f"not JSON ({exc.msg})"}
                continue
            yield n, record if isinstance(record, dict) else {"__error__": "not a JSON object"}


def _check(record: dict, *columns: str) -> None:
    if "__error__" in record:
        raise ValueError(record["__error__"])
    missing = [c for c in columns if c not in record]
    if missing:
        raise ValueError(f"missing column {', '.join(missing)}")


def _hh_pair(line: int, record: dict) -> Pair:
    _check(record, "chosen", "rejected")
    prompt, chosen, rejected = formats.hh_split(record["chosen"], record["rejected"])
    return Pair(line, prompt, chosen, rejected)


def _prompt_messages(value) -> list[dict]:
    if isinstance(value, str):
        if value.startswith(formats.HUMAN):  # a multi-turn prompt written as a transcript
            turns = formats.hh_parse(value)
            if turns and turns[-1] == {"role": "assistant", "content": ""}:
                turns = turns[:-1]
            return turns
        if not value.strip():
            raise ValueError("the prompt is empty")
        return [{"role": "user", "content": value}]
    if (
        isinstance(value, list)
        and value
        and all(
            isinstance(m, dict)
            and isinstance(m.get("content"), str)
            and m.get("role") in ("system", "user", "assistant")
            for m in value
        )
    ):
        return formats.clean_messages(value)
    raise ValueError("prompt must be text or a list of {role, content} messages")


def _answer(value, column: str) -> str:
    if isinstance(value, str):
        return value
    if (
        isinstance(value, list)
        and len(value) == 1
        and isinstance(value[0], dict)
        and value[0].get("role") == "assistant"
        and isinstance(value[0].get("content"), str)
    ):
        return value[0]["content"]
    raise ValueError(f"{column} must be text or one assistant message")


def _preference_pair(line: int, record: dict) -> Pair:
    """TRL's explicit-prompt preference row, standard or conversational; without a prompt,
    HH-style transcripts in chosen/rejected are accepted too."""
    _check(record, "chosen", "rejected")
    if "prompt" not in record:
        if isinstance(record["chosen"], str) and record["chosen"].startswith(formats.HUMAN):
            return _hh_pair(line, record)
        raise ValueError("missing column prompt")
    return Pair(
        line,
        _prompt_messages(record["prompt"]),
        _answer(record["chosen"], "chosen"),
        _answer(record["rejected"], "rejected"),
        tie=bool(record.get("tie") or False),
        chosen_model=str(record.get("chosen_model") or ""),
        rejected_model=str(record.get("rejected_model") or ""),
        category=str(record.get("category") or "")[:50],
    )


# --------------------------------------------------------------------------- storing


@transaction.atomic
def pairs_store(*, project: Project, pairs: list[Pair], source: str) -> ImportReport:
    """Prompts (reused by content hash), two completions and one ranking per pair."""
    from arena.models import Contestant

    report = ImportReport()
    prompt_of = dict(project.prompts.values_list("content_hash", "id"))
    fresh: dict[str, Prompt] = {}
    for pair in pairs:
        digest = messages_hash(pair.prompt)
        if digest not in prompt_of and digest not in fresh:
            fresh[digest] = Prompt(
                project=project,
                messages=pair.prompt,
                category=pair.category,
                source=source[:200],
                content_hash=digest,
            )
    for prompt in Prompt.objects.bulk_create(fresh.values(), batch_size=2000):
        prompt_of[prompt.content_hash] = prompt.pk
    report.prompts = len(fresh)
    names = {p.chosen_model for p in pairs} | {p.rejected_model for p in pairs}
    contestants = dict(Contestant.objects.filter(name__in=names - {""}).values_list("name", "id"))

    def answer(pair: Pair, text: str, model: str) -> Completion:
        return Completion(
            prompt_id=prompt_of[messages_hash(pair.prompt)],
            source=CompletionSource.MODEL,
            contestant_id=contestants.get(model),
            text=text,
            settings={"imported_from": source[:200], **({"model": model} if model else {})},
        )

    answers = Completion.objects.bulk_create(
        [
            a
            for pair in pairs
            for a in (
                answer(pair, pair.chosen, pair.chosen_model),
                answer(pair, pair.rejected, pair.rejected_model),
            )
        ],
        batch_size=2000,
    )
    report.completions = len(answers)
    rankings = []
    for k, pair in enumerate(pairs):
        chosen, rejected = answers[2 * k].pk, answers[2 * k + 1].pk
        rankings.append(
            Ranking(
                project=project,
                prompt_id=answers[2 * k].prompt_id,
                annotator=None,
                origin=RankingOrigin.IMPORT,
                groups=[[chosen, rejected]] if pair.tie else [[chosen], [rejected]],
                guidelines_version=project.guidelines_version,
                rationale=f"Imported from {source}, line {pair.line}."[:500],
            )
        )
    report.rankings = len(Ranking.objects.bulk_create(rankings, batch_size=2000))
    return report
