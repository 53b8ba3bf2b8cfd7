"""Projects and their guidelines, overlap, and prompts (import and manual entry)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, Exists, OuterRef, Value, When

from annotation.imports import Row, messages_hash
from annotation.models import (
    Demonstration,
    GuidelineVersion,
    Item,
    Project,
    Prompt,
    TaskKind,
)
from annotation.services.errors import TaskError


def project_create(*, name: str, slug: str, created_by=None, **fields) -> Project:
    contestants = fields.pop("contestants", [])
    with transaction.atomic():
        project = Project(name=name, slug=slug, created_by=created_by, **fields)
        project.full_clean()
        project.save()
        project.contestants.set(contestants)
        GuidelineVersion.objects.create(project=project, version=1, text=project.guidelines)
    return project


def project_guidelines_update(*, project: Project, guidelines: str) -> Project:
    """Store new guidelines as the next version; later judgments record the new number."""
    if guidelines == project.guidelines:
        return project
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        locked.guidelines = guidelines
        locked.guidelines_version += 1
        locked.save(update_fields=["guidelines", "guidelines_version"])
        GuidelineVersion.objects.create(
            project=locked, version=locked.guidelines_version, text=guidelines
        )
    project.guidelines, project.guidelines_version = locked.guidelines, locked.guidelines_version
    return project


def project_overlap_update(*, project: Project, overlap: int) -> Project:
    """Change how many judgments each item needs, reopening or closing items to match."""
    if not 1 <= overlap <= 20:
        raise TaskError("Overlap must lie between 1 and 20.")
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(overlap=overlap)
        Item.objects.filter(project=project).update(
            is_open=Case(When(taken__lt=overlap, then=Value(True)), default=Value(False))
        )
    project.overlap = overlap
    return project


@dataclass
class ImportResult:
    created: int
    duplicates: list[int]  # line numbers of rows already in the project or earlier in the file
    demonstrations: int


def prompts_import(*, project: Project, rows: list[Row], source: str = "", user=None):
    """Store checked rows as prompts (one transaction), skipping duplicates; rows that carry an
    answer also become demonstrations. Demonstration items are opened when the project runs
    demonstration tasks."""
    existing = set(project.prompts.values_list("content_hash", flat=True))
    fresh, duplicates = [], []
    for row in rows:
        if row.content_hash in existing:
            duplicates.append(row.line)
            continue
        existing.add(row.content_hash)
        fresh.append(row)
    with transaction.atomic():
        prompts = Prompt.objects.bulk_create(
            Prompt(
                project=project,
                messages=row.messages,
                category=row.category,
                tags=row.tags,
                source=source[:200],
                content_hash=row.content_hash,
                created_by=user,
            )
            for row in fresh
        )
        demos = [
            Demonstration(
                project=project,
                prompt=prompt,
                text=row.answer,
                source=source[:200],
                guidelines_version=project.guidelines_version,
            )
            for prompt, row in zip(prompts, fresh, strict=True)
            if row.answer.strip()
        ]
        Demonstration.objects.bulk_create(demos)
        if TaskKind.DEMONSTRATION in project.task_kinds:
            Item.objects.bulk_create(
                Item(project=project, prompt=p, kind=TaskKind.DEMONSTRATION) for p in prompts
            )
    return ImportResult(len(prompts), duplicates, len(demos))


def demonstration_items_open(*, project: Project) -> int:
    """Open a demonstration item for every prompt that has none (prompts stored by other means
    than the import, such as the demo loader), and give them their duplicate-detection hash."""
    if TaskKind.DEMONSTRATION not in project.task_kinds:
        return 0
    with transaction.atomic():
        for prompt in project.prompts.filter(content_hash=""):
            prompt.content_hash = messages_hash(prompt.messages)
            prompt.save(update_fields=["content_hash"])
        has_item = Item.objects.filter(prompt=OuterRef("pk"), kind=TaskKind.DEMONSTRATION)
        missing = project.prompts.filter(~Exists(has_item))
        created = Item.objects.bulk_create(
            Item(project=project, prompt=p, kind=TaskKind.DEMONSTRATION) for p in missing
        )
    return len(created)


def prompt_create(*, project: Project, messages: list[dict], category: str = "", user=None):
    from annotation.imports import _messages

    clean = _messages(messages, 1)
    result = prompts_import(
        project=project, rows=[Row(1, clean, category)], source="manual", user=user
    )
    if not result.created:
        raise TaskError("This prompt is already in the project.", status=409)
    return project.prompts.get(content_hash=messages_hash(clean))
