"""What the home page shows each person: the cards of the areas their roles open, each saying
what is waiting for them (tasks in their queue, reviews, snapshots being built, training runs
and their results)."""

from __future__ import annotations

from core.jobs import ACTIVE
from core.roles import Role, user_has_role


def home_context(user) -> dict:
    from annotation.models import Project
    from arena.models import Contestant

    context = {
        "contestant_count": Contestant.objects.active().count(),
        "project_count": Project.objects.count(),
    }
    if not user.is_authenticated:
        return context
    if user_has_role(user, Role.ANNOTATOR):
        context.update(_annotator(user))
    if user_has_role(user, Role.REVIEWER):
        context.update(_reviewer(user))
    if user_has_role(user, Role.RESEARCHER):
        context.update(_researcher())
    return context


def _annotator(user) -> dict:
    from annotation import selectors

    queue = selectors.annotator_queue(user=user)
    return {
        "queue": queue,
        "queue_total": sum(row["waiting"] for row in queue),
        "feedback_unseen": selectors.feedback_unseen(user=user),
    }


def _reviewer(user) -> dict:
    from annotation import selectors

    reviews = selectors.reviews_waiting(user=user)
    return {
        "reviews": reviews,
        "reviews_total": sum(r["rankings"] + r["demonstrations"] for r in reviews),
    }


def _researcher() -> dict:
    from annotation.models import DatasetSnapshot, SnapshotStatus
    from training.models import TrainingRun

    building = DatasetSnapshot.objects.filter(
        status__in=(SnapshotStatus.PENDING, SnapshotStatus.BUILDING)
    ).order_by("created_at")
    runs = TrainingRun.objects.select_related("result_contestant", "base_model")
    return {
        "snapshots_building": list(building[:5]),
        "snapshots_building_total": building.count(),
        "runs_active": list(runs.filter(status__in=ACTIVE).order_by("created_at")[:5]),
        "runs_active_total": runs.filter(status__in=ACTIVE).count(),
        "runs_finished": list(
            runs.exclude(status__in=ACTIVE).order_by("-finished_at", "-created_at")[:5]
        ),
    }
