"""How far a judge can be trusted: position bias, agreement between judges, and rank
correlation between two leaderboards.

Verdicts are the discrete reading of a preference (see `winrate`): 1 = ``output_1`` wins,
2 = ``output_2`` wins, 1.5 = draw; a weighted preference counts for the side it leans to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from evaluation.metrics.common import Array
from evaluation.metrics.winrate import DRAW, normalize_preferences


def verdicts(preferences: Sequence[float | None] | Array) -> Array:
    """Discrete verdicts (N,): 1.0, 2.0, 1.5 (draw) or NaN (no verdict)."""
    prefs = normalize_preferences(preferences)
    out = np.where(prefs == DRAW, DRAW, np.where(prefs > DRAW, 2.0, 1.0))  # (N,)
    out[np.isnan(prefs)] = np.nan
    return out


@dataclass(frozen=True)
class PositionBias:
    """A judge that saw each pair in both orders.

    ``rate``: share of pairs whose verdict changes with the order (a draw one way and a win the
    other way counts as a change). ``first_share`` / ``second_share``: among the changed pairs,
    the share where the judge preferred whichever answer it saw first / second both times
    (the rest changed through a draw). ``n`` pairs with a verdict in both orders."""

    rate: float
    first_share: float
    second_share: float
    n: int


def position_bias(
    preferences: Sequence[float | None] | Array, swapped: Sequence[float | None] | Array
) -> PositionBias:
    """Position bias from a judge's preferences on pairs (A, B) and on the same pairs (B, A).

    ``preferences[i]`` judges A as ``output_1`` and B as ``output_2``; ``swapped[i]`` judges the
    same pair with B as ``output_1`` and A as ``output_2``. A consistent judge gives
    ``swapped = 3 - preferences`` in verdicts. Pairs without both verdicts are skipped."""
    first, second = verdicts(preferences), verdicts(swapped)
    if first.shape != second.shape:
        raise ValueError(f"{first.size} preferences but {second.size} swapped ones")
    both = ~np.isnan(first) & ~np.isnan(second)
    first, mirrored = first[both], 3.0 - second[both]  # mirrored: the swapped verdict on (A, B)
    n = int(first.size)
    changed = first != mirrored
    n_changed = int(changed.sum())
    # Preferring the first-shown answer both times: output_1 (A) first, then output_1 (B).
    favours_first = int(np.sum(changed & (first == 1.0) & (mirrored == 2.0)))
    favours_second = int(np.sum(changed & (first == 2.0) & (mirrored == 1.0)))
    nan = float("nan")
    return PositionBias(
        rate=n_changed / n if n else nan,
        first_share=favours_first / n_changed if n_changed else nan,
        second_share=favours_second / n_changed if n_changed else nan,
        n=n,
    )


@dataclass(frozen=True)
class Agreement:
    """Two judges on the same pairs: the share of equal verdicts, Cohen's kappa (agreement
    beyond what their verdict frequencies give by chance), and ``n`` pairs both judged."""

    agreement: float
    kappa: float
    n: int


def judge_agreement(
    preferences_a: Sequence[float | None] | Array, preferences_b: Sequence[float | None] | Array
) -> Agreement:
    """Agreement of two judges' verdicts on the same pairs, in the same order (N,) each."""
    a, b = verdicts(preferences_a), verdicts(preferences_b)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} preferences from one judge but {b.size} from the other")
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[both], b[both]
    n = int(a.size)
    if n == 0:
        return Agreement(float("nan"), float("nan"), 0)
    observed = float(np.mean(a == b))
    labels = np.array([1.0, DRAW, 2.0])
    freq_a = (a[:, None] == labels).mean(axis=0)  # (3,)
    freq_b = (b[:, None] == labels).mean(axis=0)  # (3,)
    chance = float(freq_a @ freq_b)
    kappa = (observed - chance) / (1.0 - chance) if chance < 1.0 else float("nan")
    return Agreement(observed, kappa, n)


def rank_correlation(scores_a: Sequence[float] | Array, scores_b: Sequence[float] | Array) -> float:
    """Spearman's rank correlation of two scorings of the same contestants (ties averaged).

    NaN when fewer than two contestants or when one scoring is constant."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} scores against {b.size}")
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)
