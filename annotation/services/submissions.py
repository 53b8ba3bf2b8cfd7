"""Ranking and demonstration submissions."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotation import quality
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Completion,
    CompletionSource,
    Demonstration,
    Project,
    Ranking,
    RankingOrigin,
    TaskKind,
)
from annotation.services.errors import TaskError
from annotation.services.queue import _assignment_close, _duration_ms, _own_active


def _labels_check(project: Project, labels: dict, letter_to_id: dict) -> dict:
    """{letter: {name: value}} -> {completion id: {name: value}}, checked against the schema."""
    schema = {spec["name"]: spec for spec in project.label_schema}
    out: dict[str, dict] = {}
    for letter, values in (labels or {}).items():
        if letter not in letter_to_id:
            raise TaskError(f"Labels name answer {letter}, which is not in this task.")
        clean = {}
        for name, value in values.items():
            spec = schema.get(name)
            if spec is None:
                raise TaskError(f"Unknown label {name!r}.")
            if spec["kind"] == "scale":
                if value in (None, ""):
                    continue
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    raise TaskError(f"{name} of answer {letter} must be a number.") from None
                if not spec["min"] <= value <= spec["max"]:
                    raise TaskError(
                        f"{name} of answer {letter} must lie in {spec['min']}-{spec['max']}."
                    )
            else:
                value = bool(value)
            clean[name] = value
        if clean:
            out[str(letter_to_id[letter])] = clean
    return out


def ranking_submit(
    *,
    assignment: Assignment,
    user,
    order: str,
    labels: dict | None = None,
    rationale: str = "",
    all_bad: bool = False,
) -> Ranking:
    """Store the annotator's order (`D > C > A = B` in display letters) with labels and
    rationale; the display order and the time on task are kept with it."""
    _own_active(assignment, user)
    item = assignment.item
    if item.kind != TaskKind.RANKING:
        raise TaskError("This task asks for a demonstration, not a ranking.")
    letters = assignment.letters
    letter_to_id = dict(zip(letters, assignment.display_order, strict=True))
    try:
        letter_groups = quality.parse_order(order, letters)
    except ValueError as exc:
        raise TaskError(str(exc)) from None
    groups = [[letter_to_id[x] for x in group] for group in letter_groups]
    clean_labels = _labels_check(item.project, labels or {}, letter_to_id)
    now = timezone.now()
    with transaction.atomic():
        if not _assignment_close(assignment.pk, AssignmentStatus.SUBMITTED, now):
            raise TaskError("This task was already submitted or has expired.", status=409)
        ranking = Ranking.objects.create(
            project_id=item.project_id,
            prompt_id=item.prompt_id,
            item=item,
            assignment=assignment,
            annotator=user,
            groups=groups,
            display_order=assignment.display_order,
            all_bad=all_bad,
            labels=clean_labels,
            rationale=rationale.strip(),
            guidelines_version=assignment.guidelines_version,
            duration_ms=_duration_ms(assignment, now),
            is_gold=item.is_gold,
            gold_score=quality.gold_score(groups, item.gold_groups) if item.is_gold else None,
            created_at=now,
        )
    return ranking


def demonstration_submit(
    *, assignment: Assignment, user, text: str, edited_from: int | None = None
) -> Demonstration:
    """Store the annotator's ideal answer. Started from a model answer and changed, it also
    stores the preference (edited > original) as a two-answer ranking."""
    _own_active(assignment, user)
    item = assignment.item
    if item.kind != TaskKind.DEMONSTRATION:
        raise TaskError("This task asks for a ranking, not a demonstration.")
    if not (text or "").strip():
        raise TaskError("Write the answer before submitting.")
    original = None
    if edited_from:
        original = Completion.objects.filter(pk=edited_from, prompt_id=item.prompt_id).first()
        if original is None:
            raise TaskError("The answer you started from does not belong to this prompt.")
    now = timezone.now()
    with transaction.atomic():
        if not _assignment_close(assignment.pk, AssignmentStatus.SUBMITTED, now):
            raise TaskError("This task was already submitted or has expired.", status=409)
        demonstration = Demonstration.objects.create(
            project_id=item.project_id,
            prompt_id=item.prompt_id,
            item=item,
            assignment=assignment,
            annotator=user,
            text=text.strip(),
            edited_from=original,
            guidelines_version=assignment.guidelines_version,
            duration_ms=_duration_ms(assignment, now),
            created_at=now,
        )
        if original is not None and text.strip() != original.text.strip():
            edited = Completion.objects.create(
                prompt_id=item.prompt_id,
                source=CompletionSource.HUMAN,
                text=text.strip(),
                author=user,
            )
            Ranking.objects.create(
                project_id=item.project_id,
                prompt_id=item.prompt_id,
                annotator=user,
                origin=RankingOrigin.EDIT,
                demonstration=demonstration,
                groups=[[edited.id], [original.id]],
                guidelines_version=assignment.guidelines_version,
                duration_ms=demonstration.duration_ms,
                created_at=now,
            )
    return demonstration
