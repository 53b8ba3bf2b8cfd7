"""Reads of the arena."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from arena.models import Contestant, Generation


def contestant_list(*, active_only: bool = False):
    qs = Contestant.objects.select_related("parent")
    return qs.active() if active_only else qs


def contestant_get_servable(*, name: str) -> Contestant | None:
    """An active contestant with local weights, by name: what `/v1/chat/completions` serves."""
    return Contestant.objects.active().local().filter(name=name).first()


# What a failed answer says to everyone but admins (the stored reason may name an endpoint, a
# folder or an upstream reply; workers log it and admins read it).
ANSWER_FAILED = "This answer failed."


def user_sees_internals(user) -> bool:
    """Admins see how contestants are served (endpoints, folders, system prompts, decoding
    settings) and why an answer failed; everyone else sees names and answers only."""
    from core.roles import Role, user_has_role

    return user_has_role(user, Role.ADMIN)


def generation_list_for_user(*, user):
    """The generations a user may see: their own, or any for staff; never the answers of an
    anonymous battle not yet voted on (not even to staff), which are seen on the battle's own
    page, as text only, so that nothing ties a side to its model before the vote."""
    qs = Generation.objects.select_related("contestant").outside_blind_battles()
    return qs if user.is_staff else qs.filter(requested_by=user)


def generation_get_for_user(*, generation_id: int, user) -> Generation | None:
    """One generation the user may see (`generation_list_for_user`), or None."""
    return generation_list_for_user(user=user).filter(pk=generation_id).first()


def leaderboard_latest(
    *, category: str = "", style_control: bool = False, include_annotation: bool = False
):
    from arena.models import LeaderboardSnapshot

    return LeaderboardSnapshot.objects.filter(
        category=category, style_control=style_control, include_annotation=include_annotation
    ).first()


def leaderboard_category_choices() -> list[str]:
    from arena.models import LeaderboardSnapshot

    return sorted(
        set(LeaderboardSnapshot.objects.exclude(category="").values_list("category", flat=True))
    )


def battle_get_for_user(*, public_id, user_id):
    """One of the user's battles by its public id, with both sides and its turns with both
    answers, in one statement (the vote's read): what a client polls while the answers are
    generated. Raises Battle.DoesNotExist, or ValidationError for an id that is no UUID."""
    from arena import votes

    return votes.read(public_id=public_id, user_id=user_id)[0]


def battle_turns(*, battle) -> list:
    """The battle's turns in order with both answers: those already prefetched on it when it
    has them (a vote's locked read, the API's list), else one query."""
    if "turns" in getattr(battle, "_prefetched_objects_cache", {}):
        return sorted(battle.turns.all(), key=lambda turn: turn.index)
    return list(battle.turns.select_related("generation_a", "generation_b").order_by("index"))


def battle_view(*, battle) -> dict:
    """What the battle page shows. Names are given only once they may be seen: after the vote,
    or in a named or direct mode."""
    from arena.models import BattleMode, GenerationStatus

    turns = battle_turns(battle=battle)
    last = turns[-1].generations() if turns else []
    finished = all(g.is_finished for g in last)
    failed = any(g.status != GenerationStatus.SUCCEEDED for g in last)
    revealed = battle.is_voted or battle.mode != BattleMode.ANONYMOUS
    return {
        "battle": battle,
        "turns": turns,
        "finished": finished,
        "can_vote": finished
        and not failed
        and not battle.is_voted
        and battle.mode != BattleMode.DIRECT,
        "can_continue": finished and not failed and not battle.is_voted,
        "can_regenerate": finished and not battle.is_voted,
        "revealed": revealed,
        "two_sided": battle.contestant_b_id is not None,
        "waiting": None if finished else battle_waiting(last),
    }


def battle_waiting(generations: list) -> dict:
    """The line a waiting battle shows above both sides (each side's text shows as it is
    written): seconds since the turn was asked, and how many answers other people asked
    earlier are still in line before this turn's first queued one (0: a worker is writing)."""
    from arena.models import GenerationStatus

    asked = min(g.enqueued_at or g.created_at for g in generations)
    queued = [g for g in generations if g.status == GenerationStatus.QUEUED]
    ahead = 0
    if queued:
        first = min(g.enqueued_at for g in queued)
        ahead = Generation.objects.filter(
            status=GenerationStatus.QUEUED, enqueued_at__lt=first
        ).count()
    return {
        "seconds": max(0, int((timezone.now() - asked).total_seconds())),
        "ahead": ahead,
        "in_line": bool(queued),
    }


def leaderboard_view(
    *, category: str, style_control: bool, query: str, include_annotation: bool = False
) -> dict:
    """The newest snapshot for the filters, rows matching the search, and plot geometry.
    When the board asked for is not there (style control refused for lack of style features,
    annotation rankings not fitted yet), the plain board is shown with a notice saying why."""
    category = "" if include_annotation else category
    style_control = style_control and not include_annotation
    snapshot = leaderboard_latest(
        category=category, style_control=style_control, include_annotation=include_annotation
    )
    notice = ""
    if snapshot is None and (style_control or include_annotation):
        snapshot = leaderboard_latest(category=category)
        notice = _fallback_notice(snapshot, style_control=style_control)
    rows = list(snapshot.rows) if snapshot else []
    provisional = list(snapshot.provisional) if snapshot else []
    if query:
        q = query.lower()

        def hit(r: dict) -> bool:
            return q in r["model"].lower() or q in r["display_name"].lower()

        rows, provisional = [r for r in rows if hit(r)], [r for r in provisional if hit(r)]
    return {
        "snapshot": snapshot,
        "rows": rows,
        "provisional": provisional,
        "min_votes": settings.ARENA_MIN_VOTES,
        "notice": notice,
        "categories": [(c, category_label(c)) for c in leaderboard_category_choices()],
        "category": category,
        "category_label": category_label(category) if category else "",
        "style_control": style_control,
        "include_annotation": include_annotation,
        "ci_chart": _ci_chart(rows),
        "heatmaps": _heatmaps(snapshot, rows) if snapshot else None,
    }


def _fallback_notice(snapshot, *, style_control: bool) -> str:
    if not style_control:
        return (
            "The board with annotation rankings is being fitted in the background; "
            "the arena votes alone are shown until it is ready."
        )
    styled = snapshot.style_battles if snapshot else 0
    total = snapshot.battles if snapshot else 0
    return (
        f"Style control needs the answers' style features (lengths, markdown), and only "
        f"{styled:,} of {total:,} counted votes carry them (imported battle files without "
        f"conversation metadata carry none). It is fitted once "
        f"{settings.ARENA_STYLE_MIN_BATTLES:,} do; the board without style control is shown."
    )


# Names of categories that are not plain words: LMArena's flag columns and our own labels.
_CATEGORY_LABELS = {
    "if": "Instruction following",
    "hard": "Hard prompts",
    "multi_turn": "Multi-turn",
    "longer_query": "Longer query",
    "annotation": "Annotation rankings",
}


def category_label(name: str) -> str:
    """A category as people read it: `creative_writing.creative_writing` -> "Creative
    writing", `if.if` -> "Instruction following", `criteria.complexity` -> "Complexity
    (criterion)"."""
    group, _, short = name.rpartition(".")
    suffix = " (criterion)" if group == "criteria" else ""
    label = _CATEGORY_LABELS.get(short) or short.replace("_", " ").strip().capitalize()
    return (label or name) + suffix


def _ci_chart(rows: list[dict], width: int = 640, row_h: int = 22) -> dict | None:
    """Ratings with 95% CI error bars as SVG geometry (no charting library needed)."""
    if not rows:
        return None
    lo = min(r["ci_lower"] for r in rows)
    hi = max(r["ci_upper"] for r in rows)
    span = max(hi - lo, 1.0)
    left, plot_w = 200, width - 230

    def x(v: float) -> float:
        return round(left + (v - lo) / span * plot_w, 1)

    bars = [
        {
            "label": r["display_name"],
            "y": 20 + k * row_h,
            "x1": x(r["ci_lower"]),
            "x2": x(r["ci_upper"]),
            "cx": x(r["rating"]),
            "rating": round(r["rating"], 1),
        }
        for k, r in enumerate(rows)
    ]
    ticks = [{"x": x(lo + span * f), "v": round(lo + span * f)} for f in (0, 0.25, 0.5, 0.75, 1)]
    return {"bars": bars, "ticks": ticks, "width": width, "height": 40 + len(rows) * row_h}


def _heatmaps(snapshot, rows: list[dict]) -> dict:
    """Win-fraction and battle-count matrices of the shown models, with cell colours."""
    models = snapshot.plots.get("models", [])
    index = {m: k for k, m in enumerate(models)}
    order = [index[r["model"]] for r in rows if r["model"] in index][:20]
    labels = [models[k] for k in order]
    win = snapshot.plots.get("win_fraction", [])
    count = snapshot.plots.get("battle_count", [])
    max_count = max((count[i][j] or 0 for i in order for j in order), default=0) or 1

    def cell_win(i: int, j: int) -> dict:
        v = win[i][j] if i != j else None
        if v is None:
            return {"text": "", "bg": "#f1f3f5"}
        red, blue = int(255 * (1 - v)), int(255 * v)
        return {
            "text": f"{v:.2f}",
            "bg": f"rgb({255 - blue // 3},{255 - abs(red - blue) // 4},{255 - red // 3})",
        }

    def cell_count(i: int, j: int) -> dict:
        v = count[i][j] or 0
        shade = int(235 - 85 * v / max_count)  # the darkest keeps dark text readable (6:1)
        return {"text": str(int(v)) if v else "", "bg": f"rgb({shade},{shade + 10},255)"}

    return {
        "labels": labels,
        "win": [{"label": models[i], "cells": [cell_win(i, j) for j in order]} for i in order],
        "count": [{"label": models[i], "cells": [cell_count(i, j) for j in order]} for i in order],
    }


def battle_counts() -> dict:
    from arena.models import Battle

    voted = Battle.objects.voted()
    return {
        "voted": voted.count(),
        "counted": Battle.objects.counted().count(),
        "imported": voted.filter(source="import").count(),
    }
