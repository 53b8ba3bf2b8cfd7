"""Reads of annotation: what a task shows, the review queue, progress, agreement, annotator
quality and the model leaderboard that rankings imply."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from annotation import quality
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Completion,
    CompletionSource,
    Demonstration,
    Item,
    Project,
    Ranking,
    RankingOrigin,
    ReviewStatus,
    TaskKind,
)


def project_list():
    return Project.objects.annotate(prompt_count=Count("prompts", distinct=True)).prefetch_related(
        "contestants"
    )


@dataclass
class Answer:
    letter: str
    completion: Completion


def task_answers(*, assignment: Assignment) -> list[Answer]:
    """The answers of a task in the order this annotator sees them, under letters only: who
    wrote them stays hidden."""
    by_id = getattr(assignment, "answers_by_id", None)
    if by_id is None:
        by_id = {c.id: c for c in Completion.objects.filter(id__in=assignment.display_order)}
    return [
        Answer(letter, by_id[cid])
        for letter, cid in zip(assignment.letters, assignment.display_order, strict=True)
        if cid in by_id
    ]


def demonstration_starting_points(*, assignment: Assignment) -> list[Completion]:
    """Model answers to the prompt an annotator may start a demonstration from."""
    return list(
        Completion.objects.filter(
            prompt_id=assignment.item.prompt_id, source=CompletionSource.MODEL, is_ready=True
        )[:4]
    )


def review_queue(*, project: Project, reviewer, limit: int = 50) -> dict:
    """Work waiting for review, oldest first, never the reviewer's own."""
    rankings = (
        Ranking.objects.filter(
            project=project, review_status=ReviewStatus.PENDING, origin=RankingOrigin.TASK
        )
        .exclude(annotator=reviewer)
        .select_related("annotator", "prompt")
        .order_by("created_at")[:limit]
    )
    demonstrations = (
        Demonstration.objects.filter(project=project, review_status=ReviewStatus.PENDING)
        .exclude(annotator=reviewer)
        .exclude(annotator=None)
        .select_related("annotator", "prompt", "edited_from")
        .order_by("created_at")[:limit]
    )
    return {"rankings": list(rankings), "demonstrations": list(demonstrations)}


def ranking_display(ranking: Ranking) -> list[dict]:
    """A ranking as the reviewer sees it: the answers under the letters the annotator saw,
    grouped best to worst, with their labels."""
    letter = {cid: chr(ord("A") + i) for i, cid in enumerate(ranking.display_order)}
    by_id = {c.id: c for c in Completion.objects.filter(id__in=letter)}
    return [
        {
            "members": [
                {
                    "letter": letter.get(cid, "?"),
                    "completion": by_id.get(cid),
                    "labels": ranking.labels.get(str(cid), {}),
                }
                for cid in group
            ]
        }
        for group in ranking.groups
    ]


def ranking_order_text(ranking: Ranking) -> str:
    letter = {cid: chr(ord("A") + i) for i, cid in enumerate(ranking.display_order)}
    return quality.format_order([[letter.get(c, "?") for c in g] for g in ranking.groups])


# --------------------------------------------------------------------------- progress


def project_progress(*, project: Project) -> dict:
    items = Item.objects.filter(project=project, is_gold=False)
    live_rankings = Ranking.objects.filter(project=project, origin=RankingOrigin.TASK).live()
    live_demos = Demonstration.objects.filter(project=project, item__isnull=False).live()
    done_counts = defaultdict(int)
    for row in live_rankings.values("item_id").annotate(n=Count("id")):
        done_counts[row["item_id"]] = row["n"]
    for row in live_demos.values("item_id").annotate(n=Count("id")):
        done_counts[row["item_id"]] += row["n"]
    by_kind = {}
    for kind in TaskKind:
        ids = list(items.filter(kind=kind).values_list("id", flat=True))
        judgments = sum(done_counts[i] for i in ids)
        complete = sum(done_counts[i] >= project.overlap for i in ids)
        by_kind[kind.value] = {
            "items": len(ids),
            "complete": complete,
            "judgments": judgments,
            "needed": len(ids) * project.overlap,
            "percent": round(100 * judgments / (len(ids) * project.overlap), 1) if ids else 0.0,
        }
    reviews = {
        s: live_rankings.model.objects.filter(project=project, review_status=s).count()
        + Demonstration.objects.filter(project=project, review_status=s).count()
        for s in ReviewStatus.values
    }
    return {
        "kinds": by_kind,
        "waiting_for_candidates": Item.objects.filter(project=project, is_ready=False).count(),
        "active_assignments": Assignment.objects.filter(
            item__project=project, status=AssignmentStatus.ACTIVE
        ).count(),
        "reviews": reviews,
        "gold_items": Item.objects.filter(project=project, is_gold=True).count(),
    }


def _rankings_by_item(project: Project) -> dict[int, dict[int, list]]:
    out: dict[int, dict[int, list]] = defaultdict(dict)
    rows = (
        Ranking.objects.filter(project=project, origin=RankingOrigin.TASK, is_gold=False)
        .live()
        .values_list("item_id", "annotator_id", "groups")
    )
    for item_id, annotator_id, groups in rows:
        out[item_id][annotator_id] = groups
    return out


def project_agreement(*, project: Project) -> dict:
    """Pairwise agreement rate and Krippendorff's alpha (ordinal) over all items that more than
    one annotator ranked, overall and per annotator (their agreement with everyone else)."""
    items = _rankings_by_item(project)
    shared = {k: v for k, v in items.items() if len(v) >= 2}
    overall = quality.pairwise_agreement(shared)
    names = dict(
        get_user_model().objects.filter(id__in=overall.per_annotator).values_list("id", "username")
    )
    return {
        "items": len(shared),
        "pairwise_rate": overall.rate,
        "comparisons": overall.comparisons,
        "alpha": quality.krippendorff_alpha_ordinal(quality.rank_units(shared)),
        "per_annotator": {
            names.get(uid, str(uid)): {"rate": rate, "comparisons": n}
            for uid, (rate, n) in overall.per_annotator.items()
        },
    }


def item_consensus(*, item: Item) -> list[tuple[int, float]]:
    groups = list(item.rankings.live().values_list("groups", flat=True))
    return quality.consensus(groups)


def project_position_bias(*, project: Project) -> quality.PositionBias:
    rows = Ranking.objects.filter(project=project, origin=RankingOrigin.TASK).live()
    return quality.position_bias(rows.values_list("display_order", "groups"))


def annotator_stats(*, project: Project) -> list[dict]:
    """Per annotator: throughput, time on task, gold accuracy, agreement, fast judgments and
    review outcomes."""
    agreement = project_agreement(project=project)["per_annotator"]
    rows: dict[str, dict] = {}
    work = [
        *Ranking.objects.filter(project=project, origin=RankingOrigin.TASK).values(
            "annotator__username",
            "duration_ms",
            "is_gold",
            "gold_score",
            "review_status",
            "created_at",
        ),
        *Demonstration.objects.filter(project=project, annotator__isnull=False).values(
            "annotator__username", "duration_ms", "review_status", "created_at"
        ),
    ]
    for w in work:
        name = w["annotator__username"]
        r = rows.setdefault(
            name,
            {
                "annotator": name,
                "judgments": 0,
                "durations": [],
                "gold": [],
                "fast": 0,
                "accepted": 0,
                "rejected": 0,
                "first": w["created_at"],
                "last": w["created_at"],
            },
        )
        r["judgments"] += 1
        r["first"], r["last"] = min(r["first"], w["created_at"]), max(r["last"], w["created_at"])
        if w["duration_ms"] is not None:
            r["durations"].append(w["duration_ms"] / 1000)
            r["fast"] += w["duration_ms"] < project.fast_seconds * 1000
        if w.get("is_gold") and w.get("gold_score") is not None:
            r["gold"].append(w["gold_score"])
        r["accepted"] += w["review_status"] == ReviewStatus.ACCEPTED
        r["rejected"] += w["review_status"] == ReviewStatus.REJECTED
    return [_annotator_row(name, r, agreement) for name, r in sorted(rows.items())]


def _annotator_row(name: str, r: dict, agreement: dict) -> dict:
    """One annotator's line of the dashboard from the counts `annotator_stats` gathered."""
    hours = max((r["last"] - r["first"]).total_seconds() / 3600, 1 / 60)
    return {
        "annotator": name,
        "judgments": r["judgments"],
        "per_hour": round(r["judgments"] / hours, 1),
        "median_seconds": statistics.median(r["durations"]) if r["durations"] else None,
        "gold_accuracy": statistics.fmean(r["gold"]) if r["gold"] else None,
        "gold_judgments": len(r["gold"]),
        "agreement": agreement.get(name, {}).get("rate"),
        "fast": r["fast"],
        "accepted": r["accepted"],
        "rejected": r["rejected"],
    }


def fast_judgments(*, project: Project, limit: int = 50):
    """Rankings made quicker than the project's threshold: worth a reviewer's look."""
    return (
        Ranking.objects.filter(
            project=project, origin=RankingOrigin.TASK, duration_ms__lt=project.fast_seconds * 1000
        )
        .select_related("annotator")
        .order_by("-created_at")[:limit]
    )


# --------------------------------------------------------------------------- models


def model_outcomes(*, project: Project | None = None) -> list[tuple[str, str, float]]:
    """Every live ranking of model-written answers expanded into pairwise outcomes between the
    contestants (by name) that wrote them: (model_a, model_b, outcome), 1.0 when model_a's
    answer was preferred, 0.5 for a tie. This is what the arena adds as a labelled source."""
    rankings = Ranking.objects.filter(origin=RankingOrigin.TASK).live()
    if project is not None:
        rankings = rankings.filter(project=project)
    rankings = list(rankings.values_list("groups", flat=True))
    ids = {cid for groups in rankings for g in groups for cid in g}
    owner = dict(
        Completion.objects.filter(id__in=ids, contestant__isnull=False).values_list(
            "id", "contestant__name"
        )
    )
    out = []
    for groups in rankings:
        out.extend(quality.model_outcomes(groups, owner))
    return out


def project_leaderboard(*, project: Project) -> list[dict]:
    """Bradley-Terry ratings with 95% intervals of the contestants, from this project's
    rankings, fitted by the arena's own ratings code so that the numbers compare."""
    from arena import ratings

    outcomes = model_outcomes(project=project)
    if not outcomes:
        return []
    model_a, model_b, outcome = zip(*outcomes, strict=True)
    return ratings.leaderboard(list(model_a), list(model_b), list(outcome), ci="sandwich")


def judgments_for_api(*, project: Project):
    return Ranking.objects.filter(project=project).select_related("annotator").order_by("id")


def assignment_current(*, project: Project, user) -> Assignment | None:
    """The task the annotator holds in this project and may still submit (None: none)."""
    return (
        Assignment.objects.filter(
            item__project=project,
            user=user,
            status=AssignmentStatus.ACTIVE,
            expires_at__gt=timezone.now(),
        )
        .order_by("started_at")
        .first()
    )


def user_has_pending(*, project: Project, user) -> bool:
    return Assignment.objects.filter(
        item__project=project, user=user, status=AssignmentStatus.ACTIVE
    ).exists()


def project_counts(*, project: Project) -> dict:
    return Item.objects.filter(project=project).aggregate(
        items=Count("id"),
        ranking=Count("id", filter=Q(kind=TaskKind.RANKING)),
        demonstration=Count("id", filter=Q(kind=TaskKind.DEMONSTRATION)),
    )


def arena_board(*, models: list[str]) -> list[dict]:
    """The arena's own latest leaderboard rows for these models, to show beside the project's
    board (empty when the arena has not fitted one yet)."""
    from django.apps import apps

    try:
        snapshot_model = apps.get_model("arena", "LeaderboardSnapshot")
    except LookupError:
        return []
    snapshot = snapshot_model.objects.filter(
        category="", style_control=False, include_annotation=False
    ).first()
    if snapshot is None:
        return []
    return [row for row in snapshot.rows if row.get("model") in set(models)]


# --------------------------------------------------------------------------- the annotator's own


def annotator_work(*, user, status: str = "", limit: int = 100) -> list[dict]:
    """The annotator's rankings and demonstrations, newest first, with their review state and
    the reviewer's comment (the reviewer's name stays out)."""
    rankings = Ranking.objects.filter(annotator=user, origin=RankingOrigin.TASK)
    demonstrations = Demonstration.objects.filter(annotator=user, item__isnull=False)
    if status:
        rankings = rankings.filter(review_status=status)
        demonstrations = demonstrations.filter(review_status=status)
    rows = [
        {"kind": "ranking", "work": r, "order": ranking_order_text(r)}
        for r in rankings.select_related("project", "prompt").order_by("-created_at")[:limit]
    ] + [
        {"kind": "demonstration", "work": d}
        for d in demonstrations.select_related("project", "prompt").order_by("-created_at")[:limit]
    ]
    rows.sort(key=lambda row: row["work"].created_at, reverse=True)
    return rows[:limit]


def annotator_summary(*, user) -> list[dict]:
    """Per project the annotator worked in: their judgments and review outcomes, agreement
    with the others and gold accuracy, as the project's dashboard computes them."""
    project_ids = set(
        Ranking.objects.filter(annotator=user, origin=RankingOrigin.TASK).values_list(
            "project_id", flat=True
        )
    ) | set(Demonstration.objects.filter(annotator=user).values_list("project_id", flat=True))
    out = []
    for project in Project.objects.filter(id__in=project_ids).order_by("name"):
        mine = next(
            (r for r in annotator_stats(project=project) if r["annotator"] == user.username), None
        )
        if mine is not None:
            mine["pending"] = mine["judgments"] - mine["accepted"] - mine["rejected"]
            out.append({"project": project, **mine})
    return out


def feedback_unseen(*, user) -> int:
    """How much of the annotator's work came back rejected since they last looked."""
    if not user.is_authenticated:
        return 0
    return sum(
        model.objects.filter(
            annotator=user, review_status=ReviewStatus.REJECTED, feedback_seen=False
        ).count()
        for model in (Ranking, Demonstration)
    )


def annotator_queue(*, user) -> list[dict]:
    """Per project: the tasks the annotator may still take (open items of the project's task
    kinds they have neither had nor written) and whether they hold one now."""
    mine = Assignment.objects.filter(user=user).values("item_id")
    held = set(
        Assignment.objects.filter(
            user=user, status=AssignmentStatus.ACTIVE, expires_at__gt=timezone.now()
        ).values_list("item__project_id", flat=True)
    )
    out = []
    for project in Project.objects.order_by("name"):
        waiting = (
            Item.objects.filter(
                project=project,
                is_open=True,
                is_ready=True,
                is_gold=False,
                kind__in=project.task_kinds,
            )
            .exclude(author=user)
            .exclude(pk__in=mine)
            .count()
        )
        if waiting or project.id in held:
            out.append({"project": project, "waiting": waiting, "holding": project.id in held})
    return out


def reviews_waiting(*, user) -> list[dict]:
    """Per project: work waiting for review that this reviewer may decide (not their own)."""
    pending = Q(review_status=ReviewStatus.PENDING) & ~Q(annotator=user)
    rankings = dict(
        Ranking.objects.filter(pending, origin=RankingOrigin.TASK)
        .values_list("project_id")
        .annotate(n=Count("id"))
    )
    demonstrations = dict(
        Demonstration.objects.filter(pending, annotator__isnull=False)
        .values_list("project_id")
        .annotate(n=Count("id"))
    )
    ids = set(rankings) | set(demonstrations)
    return [
        {
            "project": p,
            "rankings": rankings.get(p.id, 0),
            "demonstrations": demonstrations.get(p.id, 0),
        }
        for p in Project.objects.filter(id__in=ids).order_by("name")
    ]


def ranking_sizes(*, project: Project) -> dict[int, int]:
    """How many answers the project's ranking items really carry: {K: number of items}."""
    sizes = (
        Item.objects.filter(project=project, kind=TaskKind.RANKING)
        .annotate(k=Count("completions"))
        .values_list("k", flat=True)
    )
    return dict(sorted(Counter(sizes).items()))
