"""A leaderboard against one baseline: raw and length-controlled win rates per contestant,
with AlpacaEval 2.0's columns and order (best length-controlled win rate first)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields

import numpy as np

from evaluation.metrics.length_controlled import (
    COEF_L2,
    DIFFICULTY_L2,
    Judgments,
    fit_length_controlled,
    instruction_difficulty,
)
from evaluation.metrics.winrate import win_rate


@dataclass(frozen=True)
class LeaderboardRow:
    """One contestant's row; field names and order are AlpacaEval's leaderboard CSV columns."""

    model: str
    win_rate: float
    standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    discrete_win_rate: float
    avg_length: int | None
    length_controlled_winrate: float
    lc_standard_error: float

    def as_tuple(self) -> tuple:
        return astuple(self)


LEADERBOARD_COLUMNS = tuple(f.name for f in fields(LeaderboardRow))


def _sort_key(row: LeaderboardRow) -> tuple[float, float]:
    lc = row.length_controlled_winrate
    wr = row.win_rate
    return (-lc if not math.isnan(lc) else math.inf, -wr if not math.isnan(wr) else math.inf)


def leaderboard(
    judgments: Sequence[Judgments],
    *,
    baseline: str | None = None,
    n_instructions: int | None = None,
    difficulty_l2: float = DIFFICULTY_L2,
    l2: float = COEF_L2,
) -> list[LeaderboardRow]:
    """Rows for every contestant, best length-controlled win rate first (ties: raw win rate).

    The instruction difficulty is fitted jointly on every contestant except the baseline judged
    against itself, which scores 50% length-controlled by construction, as in AlpacaEval."""
    if len({j.model for j in judgments}) != len(judgments):
        raise ValueError("each contestant must appear once")
    if n_instructions is None:
        n_instructions = 1 + max(
            (int(np.max(j.instruction, initial=-1)) for j in judgments), default=-1
        )
    others = [j for j in judgments if j.model != baseline]
    difficulty = instruction_difficulty(others, n_instructions, difficulty_l2=difficulty_l2, l2=l2)
    rows = []
    for j in judgments:
        raw = win_rate(j.preference, j.length)
        if j.model == baseline:
            lc, lc_se = 50.0, 0.0
        else:
            fit = fit_length_controlled(j, difficulty, l2=l2)
            lc, lc_se = fit.length_controlled_winrate, fit.lc_standard_error
        rows.append(
            LeaderboardRow(
                j.model,
                raw.win_rate,
                raw.standard_error,
                raw.n_wins,
                raw.n_wins_base,
                raw.n_draws,
                raw.n_total,
                raw.discrete_win_rate,
                raw.avg_length,
                lc,
                lc_se,
            )
        )
    return sorted(rows, key=_sort_key)
