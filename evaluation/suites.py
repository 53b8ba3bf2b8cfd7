"""Writes of evaluation suites: a fixed prompt set plus a baseline contestant, from an uploaded
file (AlpacaEval's `alpaca_eval.json`, or the platform's prompt import formats), a project's
prompts, or the held-out prompts of a dataset snapshot. A suite is immutable once used."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import transaction

from annotation.imports import ImportRefused, messages_hash, parse_file
from evaluation.models import Suite, SuitePrompt, SuiteSource

# Answers to a suite are greedy unless the suite says otherwise, so that they are reproducible.
DEFAULT_GENERATION_SETTINGS = {"temperature": 0.0, "seed": 0}
MAX_SUITE_PROMPTS = 20_000
HELDOUT_BUCKETS = 10  # a snapshot's held-out share is 1 / HELDOUT_BUCKETS of its prompts


class SuiteRefused(ValueError):
    """The suite cannot be created or changed; the message says why."""


@dataclass(frozen=True)
class PromptRow:
    instruction: str
    dataset: str = ""


def prompt_hash(instruction: str) -> str:
    """The hash that identifies a prompt everywhere (the annotation import's duplicate rule:
    one user turn, whitespace and letter case ignored), for answer reuse and for disjointness
    checks between training data and evaluation suites."""
    return messages_hash([{"role": "user", "content": instruction}])


def suite_content_hash(*, prompts: list[PromptRow], baseline_name: str, settings: dict) -> str:
    body = {
        "baseline": baseline_name,
        "settings": settings,
        "prompts": [[p.instruction, p.dataset] for p in prompts],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_alpaca_eval(data: bytes) -> list[PromptRow]:
    """AlpacaEval's evaluation set: a JSON list of objects with `instruction` (and `dataset`)."""
    try:
        records = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteRefused(f"The file is not valid JSON: {exc}") from None
    if not isinstance(records, list):
        raise SuiteRefused("An AlpacaEval file is a JSON list of {instruction, dataset} objects.")
    rows = []
    for n, record in enumerate(records, start=1):
        instruction = record.get("instruction") if isinstance(record, dict) else None
        if not isinstance(instruction, str) or not instruction.strip():
            raise SuiteRefused(f"Entry {n} has no `instruction` text.")
        rows.append(PromptRow(instruction, str(record.get("dataset") or "")[:200]))
    return rows


def read_prompt_file(data: bytes, *, filename: str) -> list[PromptRow]:
    """Prompts from an upload: a `.json` list in AlpacaEval's shape, or any prompt file the
    annotation import reads (JSONL, CSV, Parquet with `messages` or a text column)."""
    if filename.lower().endswith(".json") and data.lstrip()[:1] == b"[":
        rows = read_alpaca_eval(data)
    else:
        try:
            parsed = parse_file(data, filename=filename)
        except ImportRefused as exc:
            raise SuiteRefused(str(exc)) from None
        rows = []
        for row in parsed:
            if len(row.messages) != 1:
                raise SuiteRefused(
                    f"line {row.line}: a suite's prompts are single user turns; "
                    "this one is a conversation."
                )
            rows.append(PromptRow(row.messages[0]["content"], row.category))
    if not rows:
        raise SuiteRefused("The file holds no prompts.")
    return rows


@transaction.atomic
def suite_create(
    *,
    name: str,
    baseline,
    prompts: list[PromptRow],
    source: str = SuiteSource.UPLOAD,
    source_ref: str = "",
    description: str = "",
    generation_settings: dict | None = None,
    user=None,
) -> Suite:
    """Store a suite and its prompts (duplicates dropped, order kept) in one transaction."""
    if Suite.objects.filter(name=name).exists():
        raise SuiteRefused(f"A suite named {name!r} already exists.")
    unique, seen = [], set()
    for row in prompts:
        key = prompt_hash(row.instruction)
        if key not in seen:
            seen.add(key)
            unique.append((row, key))
    if not unique:
        raise SuiteRefused("A suite needs at least one prompt.")
    if len(unique) > MAX_SUITE_PROMPTS:
        raise SuiteRefused(f"A suite holds at most {MAX_SUITE_PROMPTS} prompts.")
    settings = dict(
        DEFAULT_GENERATION_SETTINGS if generation_settings is None else generation_settings
    )
    rows = [row for row, _ in unique]
    suite = Suite.objects.create(
        name=name,
        description=description,
        baseline=baseline,
        source=source,
        source_ref=source_ref[:300],
        generation_settings=settings,
        content_hash=suite_content_hash(
            prompts=rows, baseline_name=baseline.name, settings=settings
        ),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    SuitePrompt.objects.bulk_create(
        SuitePrompt(
            suite=suite, index=i, instruction=r.instruction, dataset=r.dataset, prompt_hash=h
        )
        for i, (r, h) in enumerate(unique)
    )
    return suite


def suite_create_from_upload(*, name: str, baseline, data: bytes, filename: str, **kw) -> Suite:
    rows = read_prompt_file(data, filename=filename)
    return suite_create(
        name=name,
        baseline=baseline,
        prompts=rows,
        source=SuiteSource.UPLOAD,
        source_ref=filename,
        **kw,
    )


def suite_create_from_project(*, name: str, baseline, project, **kw) -> Suite:
    """A project's single-turn prompts (conversations are left out)."""
    rows = [
        PromptRow(p.messages[0]["content"], p.category)
        for p in project.prompts.order_by("id")
        if len(p.messages) == 1 and p.messages[0].get("role") == "user"
    ]
    return suite_create(
        name=name,
        baseline=baseline,
        prompts=rows,
        source=SuiteSource.PROJECT,
        source_ref=f"project:{project.pk}",
        **kw,
    )


def is_heldout(instruction_hash: str) -> bool:
    """The held-out part of any prompt collection: a fixed bucket of the prompt hash, so that
    the same prompt is held out of every snapshot and the split needs no stored state."""
    return int(instruction_hash[:8], 16) % HELDOUT_BUCKETS == 0


def snapshot_prompts(snapshot) -> list[str]:
    """The distinct single-turn prompt texts of a built snapshot's rows, in file order."""
    from training.reports import _row_prompt
    from training.services import snapshot_rows

    texts: dict[str, None] = {}
    for row in snapshot_rows(snapshot):
        prompt = _row_prompt(row)
        if isinstance(prompt, list):
            users = [m for m in prompt if m.get("role") == "user"]
            prompt = users[0]["content"] if len(prompt) == 1 and users else None
        if isinstance(prompt, str) and prompt.strip():
            texts.setdefault(prompt, None)
    return list(texts)


def suite_create_from_snapshot(
    *, name: str, baseline, snapshot, exclude_prompt_hashes=(), heldout_only: bool = True, **kw
) -> Suite:
    """A suite of a snapshot's held-out prompts (`is_heldout`), leaving out any prompt whose
    `prompt_hash` is in `exclude_prompt_hashes` (e.g. the prompts a run trained on)."""
    if getattr(snapshot, "status", "ready") != "ready":
        raise SuiteRefused(f"Snapshot #{snapshot.pk} is not built yet ({snapshot.status}).")
    excluded = set(exclude_prompt_hashes)
    rows = []
    for text in snapshot_prompts(snapshot):
        key = prompt_hash(text)
        if key in excluded or (heldout_only and not is_heldout(key)):
            continue
        rows.append(PromptRow(text, f"snapshot:{snapshot.pk}"))
    if not rows:
        raise SuiteRefused(f"Snapshot #{snapshot.pk} has no held-out prompts left to evaluate on.")
    return suite_create(
        name=name,
        baseline=baseline,
        prompts=rows,
        source=SuiteSource.SNAPSHOT,
        source_ref=f"snapshot:{snapshot.pk}",
        **kw,
    )


def suite_update(*, suite: Suite, **fields) -> Suite:
    """Change a suite that no evaluation has used yet (description, baseline, settings)."""
    allowed = {"description", "baseline", "generation_settings"}
    if unknown := set(fields) - allowed:
        raise SuiteRefused(f"These cannot be changed: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        suite = Suite.objects.select_for_update().get(pk=suite.pk)
        if suite.is_used and set(fields) - {"description"}:
            raise SuiteRefused(
                f"Suite {suite.name} has been used by an evaluation and cannot change; "
                "create a new suite instead."
            )
        for key, value in fields.items():
            setattr(suite, key, value)
        rows = [PromptRow(p.instruction, p.dataset) for p in suite.prompts.all()]
        suite.content_hash = suite_content_hash(
            prompts=rows, baseline_name=suite.baseline.name, settings=suite.generation_settings
        )
        suite.save()
    return suite
