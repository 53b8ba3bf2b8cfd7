"""Writes of annotation: projects and guidelines, prompt import, candidate answers, the work
queue (assignment with lock and expiry), ranking and demonstration submissions, and review.

The overlap guarantee: `Item.taken` counts live assignments plus submitted work that was not
rejected. It only moves through conditional UPDATEs (`taken < overlap` to take a slot; a status
transition that succeeds exactly once to give it back), so concurrent requests on PostgreSQL or
SQLite can never push an item past its overlap.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone

from annotation import quality
from annotation.imports import Row, messages_hash
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Completion,
    CompletionSource,
    Demonstration,
    GuidelineVersion,
    Item,
    Project,
    Prompt,
    Ranking,
    RankingOrigin,
    ReviewStatus,
    TaskKind,
)


class TaskError(Exception):
    """Bad input or a request that does not fit the state; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# --------------------------------------------------------------------------- projects


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


# --------------------------------------------------------------------------- prompts


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


# --------------------------------------------------------------------------- candidates


def completion_add_human(*, prompt: Prompt, text: str, author=None) -> Completion:
    if not text.strip():
        raise TaskError("An answer needs some text.")
    return Completion.objects.create(
        prompt=prompt, source=CompletionSource.HUMAN, text=text, author=author
    )


def ranking_item_create(
    *,
    prompt: Prompt,
    completions: list[Completion],
    is_gold: bool = False,
    gold_groups: list[list[int]] | None = None,
    author=None,
) -> Item:
    """An item asking to rank `completions` (K of them) of one prompt; a gold item carries the
    known answer as tie groups of completion ids."""
    ids = {c.id for c in completions}
    if len(ids) < 2 or any(c.prompt_id != prompt.id for c in completions):
        raise TaskError("A ranking needs at least two answers to the same prompt.")
    if is_gold:
        members = [m for g in gold_groups or [] for m in g]
        if sorted(members) != sorted(ids):
            raise TaskError("A gold item's answer must place every completion exactly once.")
    with transaction.atomic():
        item = Item.objects.create(
            project=prompt.project,
            prompt=prompt,
            kind=TaskKind.RANKING,
            is_gold=is_gold,
            gold_groups=gold_groups if is_gold else None,
            is_ready=all(c.is_ready for c in completions),
            author=author,
        )
        item.completions.set(completions)
    return item


def candidates_generate(*, project: Project, prompts=None, k: int | None = None, user=None):
    """Ask K of the project's contestants (round-robin from a random start, so every model
    answers about equally often) to answer each prompt through the `generate` queue, and open a
    ranking item that becomes ready once all answers are written. Returns the items."""
    from arena.services import generation_request

    contestants = list(project.contestants.active())
    k = k or project.candidates_per_prompt
    if len(contestants) < 2:
        raise TaskError("Choose at least two active candidate models for the project first.")
    prompts = list(prompts if prompts is not None else project.prompts.all())
    items = []
    with transaction.atomic():
        for prompt in prompts:
            start = random.randrange(len(contestants))
            chosen = [contestants[(start + i) % len(contestants)] for i in range(k)]
            completions = []
            for contestant in chosen:
                generation = generation_request(
                    contestant=contestant,
                    messages=prompt.messages,
                    user=user,
                    overrides=project.sampling,
                )
                completions.append(
                    Completion.objects.create(
                        prompt=prompt,
                        source=CompletionSource.MODEL,
                        contestant=contestant,
                        generation=generation,
                        settings=generation.settings,
                        is_ready=False,
                    )
                )
            items.append(ranking_item_create(prompt=prompt, completions=completions))
    return items


def items_refresh(*, project: Project) -> int:
    """Copy finished generations onto their completions and open the ranking items whose answers
    are all written (failed answers are dropped; an item keeps going with two or more).
    Returns the number of items opened."""
    from arena.models import GenerationStatus

    opened = 0
    waiting = Item.objects.filter(project=project, is_ready=False, kind=TaskKind.RANKING)
    for item in waiting.prefetch_related("completions__generation")[:500]:
        completions = list(item.completions.all())
        for c in completions:
            g = c.generation
            if c.is_ready or c.failed or g is None or not g.is_finished:
                continue
            c.is_ready = g.status == GenerationStatus.SUCCEEDED
            c.failed = not c.is_ready
            c.text = g.output
            c.save(update_fields=["is_ready", "failed", "text"])
        if all(c.is_ready or c.failed for c in completions):
            good = [c for c in completions if c.is_ready]
            if len(good) >= 2:
                with transaction.atomic():
                    item.completions.set(good)
                    opened += Item.objects.filter(pk=item.pk, is_ready=False).update(is_ready=True)
    return opened


# --------------------------------------------------------------------------- the work queue


def _candidates(*, project: Project, user, gold: bool):
    # NOT IN over the annotator's own assignments, not NOT EXISTS: PostgreSQL hashes that list
    # once per query, whatever its statistics say. With NOT EXISTS and a freshly filled
    # assignment table it may pick a nested loop that rescans the list for every queue row it
    # walks past, which grows with the square of the annotator's work.
    mine = Assignment.objects.filter(user=user).values("item_id")
    qs = (
        Item.objects.filter(
            project=project, is_ready=True, is_gold=gold, kind__in=project.task_kinds
        )
        .exclude(author=user)
        .exclude(pk__in=mine)
        .select_related("prompt")
        .order_by("id")
    )
    if not gold:
        qs = qs.filter(is_open=True, taken__lt=project.overlap)
    if connection.features.has_select_for_update_skip_locked:
        # Concurrent annotators step over each other's candidate rows instead of queueing on
        # them; the conditional UPDATE below is still what guarantees the overlap.
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return qs


def _claim(*, project: Project, user, gold: bool, now) -> Assignment | None:
    for _ in range(8):
        try:
            with transaction.atomic():
                item = _candidates(project=project, user=user, gold=gold).first()
                if item is None:
                    return None
                if not gold and not _slot_take(item.pk, project.overlap):
                    continue
                answers = {c.id: c for c in item.completions.all()}
                order = list(answers)
                random.shuffle(order)
                assignment = Assignment.objects.create(
                    item=item,
                    user=user,
                    display_order=order,
                    guidelines_version=project.guidelines_version,
                    started_at=now,
                    expires_at=now + timedelta(minutes=project.lock_minutes),
                )
                assignment.answers_by_id = answers  # the task is shown next: no second read
                return assignment
        except IntegrityError:
            # The same annotator asked twice at once and the other request won this item.
            continue
    return None


def assignments_expire(*, project: Project, now=None) -> int:
    """Give the slots of reservations that ran out back to the queue."""
    now = now or timezone.now()
    expired = Assignment.objects.filter(
        item__project=project, status=AssignmentStatus.ACTIVE, expires_at__lte=now
    ).values_list("id", "item_id", "item__is_gold")[:200]
    released = 0
    for assignment_id, item_id, is_gold in expired:
        with transaction.atomic():
            if _assignment_close(assignment_id, AssignmentStatus.EXPIRED, now) and not is_gold:
                _slot_release(item_id)
                released += 1
    return released


def _assignment_close(assignment_id: int, status: str, now, **fields) -> bool:
    """ACTIVE -> `status`, true only for the one caller that made the transition."""
    return bool(
        Assignment.objects.filter(pk=assignment_id, status=AssignmentStatus.ACTIVE).update(
            status=status, finished_at=now, **fields
        )
    )


def _slot_take(item_id: int, overlap: int) -> bool:
    """One conditional UPDATE: take a slot only while fewer than `overlap` are taken."""
    return bool(
        Item.objects.filter(pk=item_id, taken__lt=overlap).update(
            taken=F("taken") + 1,
            is_open=Case(When(taken__lt=overlap - 1, then=Value(True)), default=Value(False)),
        )
    )


def _slot_release(item_id: int) -> None:
    Item.objects.filter(pk=item_id, taken__gt=0).update(taken=F("taken") - 1, is_open=True)


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


_HOUSEKEEPING_EVERY_S = 2.0
_housekeeping_at: dict[int, float] = {}


def _housekeeping_due(project_id: int) -> bool:
    """Expired reservations and finished generations are looked for at most every two seconds
    per process: "next task" is asked for far more often than either changes."""
    now = time.monotonic()
    if now - _housekeeping_at.get(project_id, -1e9) < _HOUSEKEEPING_EVERY_S:
        return False
    _housekeeping_at[project_id] = now
    return True


def task_next(*, project: Project, user, now=None) -> Assignment | None:
    """The annotator's current task, or a new one: an item they have not had, did not write,
    that still needs judgments (gold items are mixed in at the project's gold rate). Returns
    None when the queue holds nothing for them."""
    now = now or timezone.now()
    current = (
        Assignment.objects.filter(
            item__project=project, user=user, status=AssignmentStatus.ACTIVE, expires_at__gt=now
        )
        .select_related("item__prompt")
        .order_by("started_at")
        .first()
    )
    if current is not None:
        return current
    if _housekeeping_due(project.pk):
        _housekeeping(project, now)
    assignment = _claim_any(project=project, user=user, now=now)
    if assignment is None and _housekeeping(project, now):
        # An empty queue may only look empty: reservations ran out or answers came in since.
        assignment = _claim_any(project=project, user=user, now=now)
    return assignment


def _housekeeping(project: Project, now) -> int:
    changed = assignments_expire(project=project, now=now)
    if Item.objects.filter(project=project, is_ready=False).exists():
        changed += items_refresh(project=project)
    return changed


def _claim_any(*, project: Project, user, now) -> Assignment | None:
    gold_first = project.gold_rate > 0 and random.random() < project.gold_rate
    for gold in (True, False) if gold_first else (False,):
        assignment = _claim(project=project, user=user, gold=gold, now=now)
        if assignment is not None:
            return assignment
    return None


def task_skip(*, assignment: Assignment, user, reason: str) -> Assignment:
    _own_active(assignment, user)
    if not reason.strip():
        raise TaskError("Say why you skip this task.")
    now = timezone.now()
    with transaction.atomic():
        if not _assignment_close(
            assignment.pk, AssignmentStatus.SKIPPED, now, skip_reason=reason.strip()[:300]
        ):
            raise TaskError("This task is no longer yours to skip.", status=409)
        if not assignment.item.is_gold:
            _slot_release(assignment.item_id)
    assignment.refresh_from_db()
    return assignment


def _own_active(assignment: Assignment, user) -> None:
    if assignment.user_id != user.id:
        raise TaskError("This task belongs to someone else.", status=403)
    if assignment.status != AssignmentStatus.ACTIVE:
        raise TaskError(
            f"This task is {assignment.get_status_display().lower()}; ask for the next one.",
            status=409,
        )


def _duration_ms(assignment: Assignment, now) -> int:
    return max(0, int((now - assignment.started_at).total_seconds() * 1000))


# --------------------------------------------------------------------------- submissions


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
                groups=[[edited.id], [original.id]],
                guidelines_version=assignment.guidelines_version,
                duration_ms=demonstration.duration_ms,
                created_at=now,
            )
    return demonstration


# --------------------------------------------------------------------------- review


def review_decide(*, work: Ranking | Demonstration, reviewer, accept: bool, comment: str = ""):
    """Accept or reject a ranking or a demonstration. Rejected work gives its slot back, so the
    item returns to the queue for someone else; a rejected decision is final."""
    if work.annotator_id == reviewer.id:
        raise TaskError("Reviewers do not review their own work.", status=403)
    if not accept and not comment.strip():
        raise TaskError("Say why the work is rejected; the annotator reads it.")
    status = ReviewStatus.ACCEPTED if accept else ReviewStatus.REJECTED
    model = type(work)
    now = timezone.now()
    with transaction.atomic():
        changed = (
            model.objects.filter(pk=work.pk)
            .exclude(review_status=ReviewStatus.REJECTED)
            .update(
                review_status=status,
                reviewer=reviewer,
                review_comment=comment.strip(),
                reviewed_at=now,
            )
        )
        if not changed:
            raise TaskError("This work was already rejected.", status=409)
        if not accept:
            if work.item_id and not work.item.is_gold:
                _slot_release(work.item_id)
            if isinstance(work, Demonstration) and work.edited_from_id:
                # The edit pair came from the same answer and falls with it.
                Ranking.objects.filter(
                    origin=RankingOrigin.EDIT,
                    annotator_id=work.annotator_id,
                    prompt_id=work.prompt_id,
                    created_at=work.created_at,
                ).update(
                    review_status=status,
                    reviewer=reviewer,
                    reviewed_at=now,
                    review_comment=comment.strip(),
                )
    work.refresh_from_db()
    return work
