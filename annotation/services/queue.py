"""The work queue: assignment with lock and expiry, skipping, and the slot bookkeeping.

The overlap guarantee: `Item.taken` counts live assignments plus submitted work that was not
rejected. It only moves through conditional UPDATEs (`taken < overlap` to take a slot; a status
transition that succeeds exactly once to give it back), so concurrent requests on PostgreSQL or
SQLite can never push an item past its overlap.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    Item,
    Project,
    TaskKind,
)
from annotation.services.candidates import items_refresh
from annotation.services.errors import TaskError


def _candidates(*, project: Project, user, gold: bool, kind: str):
    # NOT IN over the annotator's own assignments, not NOT EXISTS: PostgreSQL hashes that list
    # once per query, whatever its statistics say. With NOT EXISTS and a freshly filled
    # assignment table it may pick a nested loop that rescans the list for every queue row it
    # walks past, which grows with the square of the annotator's work.
    mine = Assignment.objects.filter(user=user).values("item_id")
    qs = (
        Item.objects.filter(project=project, is_ready=True, is_gold=gold, kind=kind)
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


def _claim(*, project: Project, user, gold: bool, kind: str, now) -> Assignment | None:
    for _ in range(8):
        try:
            with transaction.atomic():
                item = _candidates(project=project, user=user, gold=gold, kind=kind).first()
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


def task_next(*, project: Project, user, now=None, kind: str = "") -> Assignment | None:
    """The annotator's current task, or a new one: an item they have not had, did not write,
    that still needs judgments (gold items are mixed in at the project's gold rate). Returns
    None when the queue holds nothing for them.

    Task kinds are interleaved: the kind the annotator did last goes to the back, so a
    project with demonstrations and rankings alternates between them while both are left.
    `kind` asks for one kind only."""
    if kind and kind not in project.task_kinds:
        raise TaskError(f"This project has no {kind} tasks.")
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
    kinds = [kind] if kind else _kinds_in_turn(project, user)
    assignment = _claim_any(project=project, user=user, now=now, kinds=kinds)
    if assignment is None and _housekeeping(project, now):
        # An empty queue may only look empty: reservations ran out or answers came in since.
        assignment = _claim_any(project=project, user=user, now=now, kinds=kinds)
    return assignment


def _kinds_in_turn(project: Project, user) -> list[str]:
    """The project's task kinds (rankings first for a newcomer), the kind of the annotator's
    latest task last."""
    last = (
        Assignment.objects.filter(item__project=project, user=user)
        .order_by("-started_at", "-id")
        .values_list("item__kind", flat=True)
        .first()
    )
    kinds = [k for k in (TaskKind.RANKING, TaskKind.DEMONSTRATION) if k in project.task_kinds]
    return sorted(kinds, key=lambda k: k == last)


def _housekeeping(project: Project, now) -> int:
    changed = assignments_expire(project=project, now=now)
    if Item.objects.filter(project=project, is_ready=False).exists():
        changed += items_refresh(project=project)
    return changed


def _claim_any(*, project: Project, user, now, kinds: list[str]) -> Assignment | None:
    gold_first = project.gold_rate > 0 and random.random() < project.gold_rate
    for gold in (True, False) if gold_first else (False,):
        for kind in kinds:
            assignment = _claim(project=project, user=user, gold=gold, kind=kind, now=now)
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
