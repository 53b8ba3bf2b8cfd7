"""Raw win rates against a baseline, with AlpacaEval 2.0's definitions.

A preference says which of two answers a judge preferred: 1 = the baseline (``output_1``),
2 = the contestant (``output_2``), 1.5 = a draw, and any float in between is the judge's
probability that the contestant's answer is better, plus one ("weighted" judges). AlpacaEval's
legacy encoding 0 also means a draw. NaN (a judge that gave no verdict) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from evaluation.metrics.common import Array

DRAW = 1.5
LEGACY_DRAW = 0.0


def normalize_preferences(preferences: Sequence[float | None] | Array) -> Array:
    """Preferences as a float array (N,): None -> NaN, the legacy draw 0 -> 1.5.

    Raises ``ValueError`` naming the first position whose value is neither NaN nor in [1, 2].
    """
    values = np.array(
        [np.nan if p is None else p for p in preferences]
        if not isinstance(preferences, np.ndarray)
        else preferences,
        dtype=float,
    ).reshape(-1)  # (N,)
    values = np.where(values == LEGACY_DRAW, DRAW, values)
    bad = np.flatnonzero(~np.isnan(values) & ((values < 1.0) | (values > 2.0)))
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"preference at position {k} is {float(values[k])!r}: "
            "must be in [1, 2] (or 0 for a draw)"
        )
    return values


@dataclass(frozen=True)
class WinRate:
    """A contestant's raw record against the baseline; percentages are in [0, 100].

    ``win_rate`` is the mean of ``preference - 1`` (a weighted judge's probabilities count as
    such), ``standard_error`` its standard error of the mean (sample standard deviation, ddof=1,
    over sqrt(n)), ``discrete_win_rate`` the share of wins with draws as half a win, where a win
    is a preference above 1.5. ``avg_length`` is the contestant's mean answer length in
    characters, truncated to an integer as AlpacaEval does (``None`` when no lengths are given).
    """

    win_rate: float
    standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    discrete_win_rate: float
    avg_length: int | None = None


def win_rate(
    preferences: Sequence[float | None] | Array, lengths: Sequence[int] | Array | None = None
) -> WinRate:
    """Win rate of a contestant from its preferences (N,) and optionally its answer lengths (N,).

    Draws are counted on the exact value 1.5 (a weighted judge rarely lands there); the lengths
    average over every answer, judged or not, as the leaderboard reports the model's outputs.
    """
    prefs = normalize_preferences(preferences)
    n_draws = int(np.sum(prefs == DRAW))
    judged = prefs[~np.isnan(prefs)] - 1.0  # (n,) in [0, 1]
    n_total = int(judged.size)
    n_wins = int(np.sum(judged > 0.5))
    n_wins_base = int(np.sum(judged < 0.5))
    if n_total:
        mean = float(np.mean(judged)) * 100
        discrete = (n_wins + 0.5 * n_draws) / n_total * 100
    else:
        mean = discrete = float("nan")
    sem = float(np.std(judged, ddof=1) / np.sqrt(n_total)) * 100 if n_total > 1 else float("nan")
    avg = None
    if lengths is not None and len(lengths):
        avg = int(np.mean(np.asarray(lengths, dtype=float)))
    return WinRate(mean, sem, n_wins, n_wins_base, n_draws, n_total, discrete, avg)


@dataclass(frozen=True)
class WinRateInterval:
    """A win rate (percent) with a two-sided confidence interval and whether it differs from
    50% (the baseline's level) at that confidence."""

    win_rate: float
    lower: float
    upper: float
    level: float
    significant: bool


def win_rate_interval(
    preferences: Sequence[float | None] | Array, *, level: float = 0.95
) -> WinRateInterval:
    """Win rate with a normal-approximation interval ``win_rate +- z * standard_error``.

    ``significant`` is true when the interval excludes 50%, i.e. a two-sided z-test of "as good
    as the baseline" rejects at ``1 - level``. With fewer than two judged preferences the
    interval is unknown (NaN) and nothing is significant.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    record = win_rate(preferences)
    z = float(stats.norm.ppf(0.5 + level / 2))
    half = z * record.standard_error
    lower, upper = record.win_rate - half, record.win_rate + half
    significant = bool(np.isfinite(half) and (lower > 50.0 or upper < 50.0))
    return WinRateInterval(record.win_rate, lower, upper, level, significant)
