"""Arena ratings: online Elo, Bradley-Terry maximum likelihood with confidence intervals,
style control, leaderboards and the pair-sampling rule.

Pure NumPy/SciPy: this package never imports Django. Every function takes arrays (or plain
sequences) and returns arrays, dataclasses or plain dicts, so services, management commands,
notebooks and benchmarks share one implementation.

Conventions (the same as Chatbot Arena / FastChat, so numbers are comparable):

* outcome of one battle, from model A's side: 1.0 = A wins, 0.0 = B wins, 0.5 = tie;
  "both are bad" is a tie.
* ratings are on the Elo scale: a difference of 400 points means 10:1 odds. Internally the fits
  use natural log-strengths ``beta``; ``rating = offset + beta * 400 / ln(10)``.
* Bradley-Terry ratings have mean 1000 over the rated models unless an anchor fixes one model.

Speed comes from aggregation: battles only enter the Bradley-Terry likelihood through the
counts per unordered pair (wins, ties, losses), so a million battles between 50 models become at
most 1,225 cells, and fits, sandwich intervals and a batched bootstrap all work on those cells.
The maths is written up in docs/ratings.md.

Modules: `common` (constants, conventions, aggregation into counts per pair), `elo`,
`bradley_terry` (the fit), `intervals` (sandwich and bootstrap intervals, rank (UB)), `style`
(style control), `matrices` (plot matrices and the pair-sampling rule), `report` (leaderboards).
Everything public is importable from `arena.ratings`.
"""

from arena.ratings.bradley_terry import BTFit, bradley_terry
from arena.ratings.common import (
    AUTO_L2,
    BASE,
    ELO_K,
    INITIAL_RATING,
    NAT,
    SCALE,
    STYLE_FEATURES,
    WINNER_OUTCOME,
    Array,
    CountTable,
    aggregate,
    encode_models,
    outcome_from_winner,
)
from arena.ratings.elo import EloResult, elo_online, elo_update
from arena.ratings.intervals import (
    RatingCI,
    batched_fit,
    bootstrap_ci,
    rank_spread,
    rank_ub,
    sandwich_ci,
)
from arena.ratings.matrices import (
    battle_count_matrix,
    pair_sampling_weights,
    predicted_win_matrix,
    win_fraction_matrix,
)
from arena.ratings.report import RatingReport, leaderboard, leaderboard_rows, rate
from arena.ratings.style import (
    StyleFit,
    style_bootstrap_ci,
    style_coefficient_se,
    style_control,
    style_difference,
    style_features,
    style_sandwich_ci,
)

__all__ = [
    "AUTO_L2",
    "Array",
    "BASE",
    "BTFit",
    "CountTable",
    "ELO_K",
    "EloResult",
    "INITIAL_RATING",
    "NAT",
    "RatingCI",
    "RatingReport",
    "SCALE",
    "STYLE_FEATURES",
    "StyleFit",
    "WINNER_OUTCOME",
    "aggregate",
    "batched_fit",
    "battle_count_matrix",
    "bootstrap_ci",
    "bradley_terry",
    "elo_online",
    "elo_update",
    "encode_models",
    "leaderboard",
    "leaderboard_rows",
    "outcome_from_winner",
    "pair_sampling_weights",
    "predicted_win_matrix",
    "rank_spread",
    "rank_ub",
    "rate",
    "sandwich_ci",
    "style_bootstrap_ci",
    "style_coefficient_se",
    "style_control",
    "style_difference",
    "style_features",
    "style_sandwich_ci",
    "win_fraction_matrix",
]
