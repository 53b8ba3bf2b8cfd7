"""Evaluation metrics against a baseline, with AlpacaEval 2.0's definitions: raw and
length-controlled win rates, their standard errors, and judge diagnostics.

Pure NumPy/SciPy: this package never imports Django. Functions take arrays or plain sequences
and return arrays or dataclasses, so services, management commands, notebooks and benchmarks
share one implementation. The maths is written up in docs/evaluation.md.

Modules: `winrate` (preferences, raw win rates, intervals), `length_controlled` (the GLM),
`agreement` (position bias, judge agreement, rank correlation), `leaderboard` (one row per
contestant, AlpacaEval's columns and order).
"""

from evaluation.metrics.agreement import (
    Agreement,
    PositionBias,
    judge_agreement,
    position_bias,
    rank_correlation,
    verdicts,
)
from evaluation.metrics.common import Array
from evaluation.metrics.leaderboard import LEADERBOARD_COLUMNS, LeaderboardRow, leaderboard
from evaluation.metrics.length_controlled import (
    COEF_L2,
    DIFFICULTY_L2,
    Judgments,
    LCFit,
    fit_length_controlled,
    fit_soft_logistic,
    instruction_difficulty,
    length_controlled_win_rates,
    length_feature,
    soft_logistic_hessian,
)
from evaluation.metrics.winrate import (
    DRAW,
    WinRate,
    WinRateInterval,
    normalize_preferences,
    win_rate,
    win_rate_interval,
)

__all__ = [
    "COEF_L2",
    "DIFFICULTY_L2",
    "DRAW",
    "LEADERBOARD_COLUMNS",
    "Agreement",
    "Array",
    "Judgments",
    "LCFit",
    "LeaderboardRow",
    "PositionBias",
    "WinRate",
    "WinRateInterval",
    "fit_length_controlled",
    "fit_soft_logistic",
    "instruction_difficulty",
    "judge_agreement",
    "leaderboard",
    "length_controlled_win_rates",
    "length_feature",
    "normalize_preferences",
    "position_bias",
    "rank_correlation",
    "soft_logistic_hessian",
    "verdicts",
    "win_rate",
    "win_rate_interval",
]
