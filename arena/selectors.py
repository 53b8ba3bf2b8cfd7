"""Reads of the arena."""

from __future__ import annotations

from arena.models import Contestant, Generation


def contestant_list(*, active_only: bool = False):
    qs = Contestant.objects.select_related("parent")
    return qs.active() if active_only else qs


def contestant_get_servable(*, name: str) -> Contestant | None:
    """An active contestant with local weights, by name: what `/v1/chat/completions` serves."""
    return Contestant.objects.active().local().filter(name=name).first()


def generation_get_for_user(*, generation_id: int, user) -> Generation | None:
    """A generation the user may see: their own, or any for staff."""
    qs = Generation.objects.select_related("contestant").filter(pk=generation_id)
    if not user.is_staff:
        qs = qs.filter(requested_by=user)
    return qs.first()


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
    failed = any(g.status == GenerationStatus.FAILED for g in last)
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
    }


def leaderboard_view(
    *, category: str, style_control: bool, query: str, include_annotation: bool = False
) -> dict:
    """The newest snapshot for the filters, rows matching the search, and plot geometry."""
    snapshot = leaderboard_latest(
        category=category if not include_annotation else "",
        style_control=style_control and not include_annotation,
        include_annotation=include_annotation,
    )
    rows = list(snapshot.rows) if snapshot else []
    if query:
        q = query.lower()
        rows = [r for r in rows if q in r["model"].lower() or q in r["display_name"].lower()]
    return {
        "snapshot": snapshot,
        "rows": rows,
        "categories": leaderboard_category_choices(),
        "category": category,
        "style_control": style_control,
        "include_annotation": include_annotation,
        "ci_chart": _ci_chart(rows),
        "heatmaps": _heatmaps(snapshot, rows) if snapshot else None,
    }


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
        shade = int(235 - 150 * v / max_count)
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
