"""Leaderboards: every fit and interval of one set of battles, as rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from arena.ratings.bradley_terry import BTFit, bradley_terry
from arena.ratings.common import Array, _outcome_array, aggregate, encode_models
from arena.ratings.elo import elo_online
from arena.ratings.intervals import RatingCI, bootstrap_ci, rank_spread, sandwich_ci
from arena.ratings.style import StyleFit, style_bootstrap_ci, style_control, style_sandwich_ci

# --------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class RatingReport:
    """Everything a leaderboard shows, per model (arrays (M,) aligned with ``models``)."""

    models: list[str]
    ratings: Array
    ci_lower: Array
    ci_upper: Array
    votes: Array
    wins: Array
    ties: Array
    losses: Array
    elo: Array | None
    ci: RatingCI
    fit: BTFit | StyleFit
    style_coefficients: dict[str, float] | None = None  # rating points per SD


def rate(
    model_a: Sequence[Any] | Array,
    model_b: Sequence[Any] | Array,
    outcome: Sequence[Any] | Array,
    *,
    models: Sequence[str] | None = None,
    ci: Literal["bootstrap", "sandwich"] = "bootstrap",
    rounds: int = 1000,
    seed: int | None = 0,
    level: float = 0.95,
    anchor: tuple[str, float] | None = None,
    l2: float | None = None,
    features_a: Array | None = None,
    features_b: Array | None = None,
    feature_names: Sequence[str] | None = None,
    with_elo: bool = True,
) -> RatingReport:
    """Fit ratings, intervals, records and online Elo for one set of battles.

    With ``features_a``/``features_b`` the ratings are style-controlled (see
    :func:`style_control`); there a bootstrap refits over all battles per round, so prefer
    ``ci="sandwich"`` or fewer rounds on large data.
    """
    names, a, b = encode_models(model_a, model_b, models)
    y = _outcome_array(outcome, a.size)
    table = aggregate(a, b, y, names)
    coefficients = None
    if features_a is not None and features_b is not None:
        fit, interval = _style_fit(
            a, b, y, features_a, features_b, feature_names, names, anchor, l2,
            ci, rounds, seed, level,
        )  # fmt: skip
        coefficients = dict(zip(fit.feature_names, fit.coefficient_points.tolist(), strict=True))
    else:
        fit = bradley_terry(table, anchor=anchor, l2=l2)
        interval = (
            sandwich_ci(fit, table, level=level)
            if ci == "sandwich"
            else bootstrap_ci(fit, table, rounds=rounds, seed=seed, level=level)
        )
    wins, ties, losses = table.record()
    elo = elo_online(a, b, y, models=names).ratings if with_elo else None
    return RatingReport(
        names, fit.ratings, interval.lower, interval.upper, table.votes, wins, ties, losses, elo,
        interval, fit, coefficients,
    )  # fmt: skip


def _style_fit(a, b, y, features_a, features_b, feature_names, names, anchor, l2, ci, rounds,
               seed, level):  # fmt: skip
    """The style-controlled fit and its interval (see `rate`)."""
    fit = style_control(
        a, b, y, features_a, features_b,
        feature_names=feature_names, models=names, anchor=anchor, l2=l2,
    )  # fmt: skip
    if ci == "sandwich":
        return fit, style_sandwich_ci(fit, level=level)
    return fit, style_bootstrap_ci(fit, rounds=rounds, seed=seed, level=level)


def leaderboard_rows(
    report: RatingReport, *, min_votes: int = 1, provisional: bool = False
) -> list[dict[str, Any]]:
    """One dict per model with at least ``max(min_votes, 1)`` votes, best first. Ranks are
    computed among the models shown. With ``provisional``, the models below ``min_votes``
    instead (at least one vote), ranked among themselves: a rating on a handful of votes
    has an interval too wide to rank against well-measured models."""
    enough = report.votes >= max(min_votes, 1)
    shown = np.flatnonzero(~enough & (report.votes > 0) if provisional else enough)
    shown = shown[np.argsort(-report.ratings[shown], kind="stable")]
    lower, upper = report.ci_lower[shown], report.ci_upper[shown]
    best, worst = rank_spread(lower, upper)
    rows = []
    for pos, k in enumerate(shown.tolist()):
        row: dict[str, Any] = {
            "model": report.models[k],
            "rating": float(report.ratings[k]),
            "ci_lower": float(lower[pos]),
            "ci_upper": float(upper[pos]),
            "votes": int(report.votes[k]),
            "rank_ub": int(best[pos]),
            "rank_spread": (int(best[pos]), int(worst[pos])),
            "wins": int(report.wins[k]),
            "ties": int(report.ties[k]),
            "losses": int(report.losses[k]),
        }
        if report.elo is not None:
            row["elo"] = float(report.elo[k])
        rows.append(row)
    return rows


def leaderboard(
    model_a: Sequence[Any] | Array,
    model_b: Sequence[Any] | Array,
    outcome: Sequence[Any] | Array,
    *,
    models: Sequence[str] | None = None,
    ci: Literal["bootstrap", "sandwich"] = "bootstrap",
    rounds: int = 1000,
    seed: int | None = 0,
    anchor: tuple[str, float] | None = None,
    l2: float | None = None,
    features_a: Array | None = None,
    features_b: Array | None = None,
    feature_names: Sequence[str] | None = None,
    min_votes: int = 1,
) -> list[dict[str, Any]]:
    """The leaderboard in one call: a list of dicts (model, rating, ci_lower, ci_upper, votes,
    rank_ub, rank_spread, wins, ties, losses, elo), best first. For a category, filter the battles
    before calling."""
    report = rate(
        model_a,
        model_b,
        outcome,
        models=models,
        ci=ci,
        rounds=rounds,
        seed=seed,
        anchor=anchor,
        l2=l2,
        features_a=features_a,
        features_b=features_b,
        feature_names=feature_names,
    )
    return leaderboard_rows(report, min_votes=min_votes)
