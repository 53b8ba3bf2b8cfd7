"""Review: accepting or rejecting submitted work."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotation.models import (
    Demonstration,
    Ranking,
    RankingOrigin,
    ReviewStatus,
)
from annotation.services.errors import TaskError
from annotation.services.queue import _slot_release


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
                feedback_seen=False,
            )
        )
        if not changed:
            raise TaskError("This work was already rejected.", status=409)
        if not accept:
            if work.item_id and not work.item.is_gold:
                _slot_release(work.item_id)
            if isinstance(work, Demonstration) and work.edited_from_id:
                # The edit pair came from the same answer and falls with it.
                Ranking.objects.filter(origin=RankingOrigin.EDIT, demonstration=work).update(
                    review_status=status,
                    reviewer=reviewer,
                    reviewed_at=now,
                    review_comment=comment.strip(),
                    feedback_seen=False,
                )
    work.refresh_from_db()
    return work


def feedback_mark_seen(*, user) -> int:
    """The annotator has read the reviews of their work: no notice about them any more."""
    with transaction.atomic():
        return sum(
            model.objects.filter(annotator=user, feedback_seen=False)
            .exclude(review_status=ReviewStatus.PENDING)
            .update(feedback_seen=True)
            for model in (Ranking, Demonstration)
        )
