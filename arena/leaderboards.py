"""Leaderboards: fitted in the background from counted votes and stored as snapshots.

Pages and the API read the newest snapshot; nothing is fitted during a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import transaction

from arena import ratings
from arena.models import Battle, Contestant, LeaderboardSnapshot

logger = logging.getLogger(__name__)

# Snapshots kept per (category, style) after each refresh; older ones are deleted.
KEEP_SNAPSHOTS = 5


def battles_load() -> dict[str, list]:
    """Every counted vote as columns, oldest first (online Elo depends on order)."""
    rows = (
        Battle.objects.counted()
        .order_by("voted_at", "pk")
        .values_list(
            "contestant_a__name",
            "contestant_b__name",
            "winner",
            "categories",
            "style_a",
            "style_b",
        )
    )
    names = ("a", "b", "winner", "categories", "style_a", "style_b")
    columns: dict[str, list] = {name: [] for name in names}
    appenders = [columns[name].append for name in names]
    for row in rows.iterator(chunk_size=20_000):
        for append, value in zip(appenders, row, strict=True):
            append(value)
    return columns


def _in_category(columns: dict[str, list], category: str) -> dict[str, list]:
    if not category:
        return columns
    keep = [k for k, cats in enumerate(columns["categories"]) if category in (cats or [])]
    return {name: [values[k] for k in keep] for name, values in columns.items()}


def _style_arrays(columns: dict[str, list]) -> tuple[dict[str, list], np.ndarray, np.ndarray]:
    """Only battles whose answers carry style features take part in a style-controlled fit."""
    keep = [
        k
        for k, (sa, sb) in enumerate(zip(columns["style_a"], columns["style_b"], strict=True))
        if sa and sb
    ]
    kept = {name: [values[k] for k in keep] for name, values in columns.items()}
    names = ratings.STYLE_FEATURES
    fa = np.array([[s.get(f, 0) for f in names] for s in kept["style_a"]], float).reshape(
        -1, len(names)
    )
    fb = np.array([[s.get(f, 0) for f in names] for s in kept["style_b"]], float).reshape(
        -1, len(names)
    )
    return kept, fa, fb


# Where the "include annotation rankings" boards get their extra votes: a function returning
# (model_a, model_b, outcome) triples, registered by the annotation app (arena does not import
# annotation; annotation builds on arena).
_annotation_outcomes: Callable[[], list[tuple[str, str, float]]] | None = None


def annotation_outcomes_register(source: Callable[[], list[tuple[str, str, float]]]) -> None:
    global _annotation_outcomes
    _annotation_outcomes = source


def annotation_columns() -> dict[str, list]:
    """Rankings from annotation projects as extra votes: each ranking of model-written answers
    expands into pairwise outcomes between the contestants that wrote them (ties as ties)."""
    outcomes = _annotation_outcomes() if _annotation_outcomes else []
    labels = {1.0: "model_a", 0.0: "model_b", 0.5: "tie"}
    return {
        "a": [a for a, _, _ in outcomes],
        "b": [b for _, b, _ in outcomes],
        "winner": [labels[o] for _, _, o in outcomes],
        "categories": [["annotation"]] * len(outcomes),
        "style_a": [{}] * len(outcomes),
        "style_b": [{}] * len(outcomes),
    }


def _board_columns(columns, category: str, include_annotation: bool, annotation) -> dict:
    """The votes of one board: the category's, with the annotation rankings when asked."""
    columns = _in_category(columns if columns is not None else battles_load(), category)
    if include_annotation:
        extra = annotation if annotation is not None else annotation_columns()
        columns = {name: columns[name] + extra[name] for name in columns}
    return columns


def leaderboard_compute(
    *,
    category: str = "",
    style_control: bool = False,
    rounds: int | None = None,
    columns: dict[str, list] | None = None,
    include_annotation: bool = False,
    annotation: dict[str, list] | None = None,
) -> LeaderboardSnapshot | None:
    """Fit one leaderboard and store it as a snapshot; None when there are no counted votes.
    `columns` (from `battles_load`) saves reading the votes again for each board."""
    started = time.monotonic()
    rounds = settings.ARENA_BOOTSTRAP_ROUNDS if rounds is None else rounds
    columns = _board_columns(columns, category, include_annotation, annotation)
    styled = sum(
        1 for sa, sb in zip(columns["style_a"], columns["style_b"], strict=True) if sa and sb
    )
    features = {}
    if style_control:
        if styled < settings.ARENA_STYLE_MIN_BATTLES:
            # Coefficients fitted on a few battles would be noise presented as a correction:
            # no style-controlled board, and the page says how many battles carry features.
            LeaderboardSnapshot.objects.filter(
                category=category, style_control=True, include_annotation=include_annotation
            ).delete()
            return None
        columns, fa, fb = _style_arrays(columns)
        features = {"features_a": fa, "features_b": fb, "feature_names": ratings.STYLE_FEATURES}
    if not columns["a"]:
        return None
    outcome = ratings.outcome_from_winner(columns["winner"])
    # A style-controlled bootstrap refits every battle per round (~0.5 s per round per million
    # battles); its sandwich intervals are the fast, robust alternative.
    use_bootstrap = rounds > 0 and not style_control
    report = _rate(columns, outcome, rounds if use_bootstrap else 0, features)
    rows, provisional = (
        ratings.leaderboard_rows(report, min_votes=settings.ARENA_MIN_VOTES, provisional=p)
        for p in (False, True)
    )
    _decorate(rows + provisional)
    snapshot = LeaderboardSnapshot(
        category=category,
        style_control=style_control,
        include_annotation=include_annotation,
        battles=len(columns["a"]),
        bootstrap_rounds=rounds if use_bootstrap else 0,
        rows=rows,
        provisional=provisional,
        style_battles=styled,
        style_coefficients=report.style_coefficients or {},
        plots=_plots(columns, outcome, report),
        seconds=time.monotonic() - started,
    )
    _snapshot_store(snapshot)
    return snapshot


def _rate(columns: dict[str, list], outcome, bootstrap_rounds: int, features: dict):
    """The ratings with bootstrap intervals (`bootstrap_rounds` > 0) or sandwich ones."""
    return ratings.rate(
        columns["a"],
        columns["b"],
        outcome,
        ci="bootstrap" if bootstrap_rounds else "sandwich",
        rounds=max(bootstrap_rounds, 1),
        **features,
    )


def _plots(columns: dict[str, list], outcome, report) -> dict:
    """The matrices the leaderboard page draws: win fractions, battle counts, covariance."""
    names, a, b = ratings.encode_models(columns["a"], columns["b"], report.models)
    table = ratings.aggregate(a, b, outcome, names)
    return {
        "models": list(report.models),
        "win_fraction": _json_matrix(ratings.win_fraction_matrix(table)),
        "battle_count": _json_matrix(ratings.battle_count_matrix(table)),
        "cov": _json_matrix(report.ci.cov),
    }


def _snapshot_store(snapshot: LeaderboardSnapshot) -> None:
    """Save `snapshot` and drop all but the newest KEEP_SNAPSHOTS of its board, at once."""
    with transaction.atomic():
        snapshot.save()
        stale = LeaderboardSnapshot.objects.filter(
            category=snapshot.category,
            style_control=snapshot.style_control,
            include_annotation=snapshot.include_annotation,
        ).values_list("pk", flat=True)[KEEP_SNAPSHOTS:]
        LeaderboardSnapshot.objects.filter(pk__in=list(stale)).delete()


def _json_matrix(matrix: np.ndarray) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), 6) for v in row] for row in matrix]


def _decorate(rows: list[dict]) -> None:
    """Add what the page shows beside the numbers: display name, organisation, licence."""
    known = {c.name: c for c in Contestant.objects.filter(name__in=[r["model"] for r in rows])}
    for row in rows:
        contestant = known.get(row["model"])
        row["display_name"] = contestant.display_name if contestant else row["model"]
        row["organization"] = contestant.organization if contestant else ""
        row["license"] = contestant.license if contestant else ""
        row["rank_spread"] = list(row["rank_spread"])


def leaderboard_categories(columns: dict[str, list], *, min_battles: int = 1) -> list[str]:
    """Categories that appear on at least `min_battles` counted votes."""
    counts: dict[str, int] = {}
    for categories in columns["categories"]:
        for name in categories or []:
            counts[name] = counts.get(name, 0) + 1
    return sorted(name for name, n in counts.items() if n >= min_battles)


def leaderboards_refresh(*, rounds: int | None = None) -> int:
    """Refit every leaderboard: overall and per category, with and without style control.
    The votes are read once."""
    columns = battles_load()
    made = 0
    for category in ["", *leaderboard_categories(columns)]:
        for style in (False, True):
            try:
                made += (
                    leaderboard_compute(
                        category=category, style_control=style, rounds=rounds, columns=columns
                    )
                    is not None
                )
            except ValueError as exc:  # e.g. a category with a single model
                logger.info("Leaderboard %r (style=%s) skipped: %s", category, style, exc)
    annotation = annotation_columns()
    if annotation["a"]:
        made += (
            leaderboard_compute(
                columns=columns, rounds=rounds, include_annotation=True, annotation=annotation
            )
            is not None
        )
    return made
