"""Constants, conventions and the aggregation of battles into counts per pair."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SCALE = 400.0
BASE = 10.0
INITIAL_RATING = 1000.0
ELO_K = 4.0
# Natural log-odds per rating point: beta = rating * NAT.
NAT = math.log(BASE) / SCALE
# Prior precision used when the data alone do not pin the ratings down (see bradley_terry).
AUTO_L2 = 1e-4

WINNER_OUTCOME = {
    "model_a": 1.0,
    "model_b": 0.0,
    "tie": 0.5,
    "both_bad": 0.5,
    "tie (bothbad)": 0.5,
}

STYLE_FEATURES = ("length_tokens", "headers", "list_items", "bold")

Array = np.ndarray


# --------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class CountTable:
    """Battle counts per unordered pair of models (``i < j``), the sufficient statistics of
    Bradley-Terry with ties as half a win (ties are kept apart because the sandwich needs them).
    """

    models: list[str]
    i: Array  # (C,) int64
    j: Array  # (C,) int64, i < j
    wins_i: Array  # (C,) float64
    ties: Array  # (C,) float64
    wins_j: Array  # (C,) float64

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n(self) -> Array:  # (C,)
        return self.wins_i + self.ties + self.wins_j

    @property
    def score_i(self) -> Array:  # (C,) wins of i with ties as half a win
        return self.wins_i + 0.5 * self.ties

    @property
    def total(self) -> float:
        return float(self.n.sum())

    @property
    def votes(self) -> Array:  # (M,) battles each model took part in
        m = self.n_models
        return np.bincount(self.i, self.n, m) + np.bincount(self.j, self.n, m)

    def record(self) -> tuple[Array, Array, Array]:
        """(wins, ties, losses) per model, each (M,)."""
        m = self.n_models
        wins = np.bincount(self.i, self.wins_i, m) + np.bincount(self.j, self.wins_j, m)
        ties = np.bincount(self.i, self.ties, m) + np.bincount(self.j, self.ties, m)
        losses = np.bincount(self.i, self.wins_j, m) + np.bincount(self.j, self.wins_i, m)
        return wins, ties, losses


def outcome_from_winner(winner: Sequence[str] | Array) -> Array:
    """Map arena ``winner`` labels (``model_a``, ``model_b``, ``tie``, ``both_bad``,
    ``tie (bothbad)``) to outcomes 1.0 / 0.0 / 0.5."""
    labels = np.asarray(winner, dtype=str)
    uniq, inverse = np.unique(labels, return_inverse=True)
    unknown = [u for u in uniq.tolist() if u not in WINNER_OUTCOME]
    if unknown:
        raise ValueError(f"unknown winner label(s): {unknown}")
    return np.array([WINNER_OUTCOME[u] for u in uniq.tolist()])[inverse]


def encode_models(
    model_a: Sequence[Any] | Array,
    model_b: Sequence[Any] | Array,
    models: Sequence[str] | None = None,
) -> tuple[list[str], Array, Array]:
    """Return (model names, codes of A, codes of B).

    Integer inputs are taken as codes into ``models`` (the fast path for large files);
    string inputs are looked up in ``models`` (order kept, so unrated models can be listed) or,
    without ``models``, coded in sorted order.
    """
    a, b = np.asarray(model_a), np.asarray(model_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError("model_a and model_b must be 1-d arrays of the same length")
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        top = int(max(a.max(), b.max())) + 1 if a.size else 0
        names = [str(x) for x in models] if models is not None else [str(k) for k in range(top)]
        if a.size and (min(a.min(), b.min()) < 0 or top > len(names)):
            raise ValueError("model codes must lie in range(len(models))")
        return names, a.astype(np.int64), b.astype(np.int64)
    if models is None:
        names, inverse = np.unique(np.concatenate([a, b]).astype(str), return_inverse=True)
        inverse = inverse.astype(np.int64)
        return names.tolist(), inverse[: a.size], inverse[a.size :]
    names = [str(x) for x in models]
    index = {name: k for k, name in enumerate(names)}
    try:
        codes = np.fromiter((index[x] for x in [*a.tolist(), *b.tolist()]), np.int64, 2 * a.size)
    except KeyError as exc:
        raise ValueError(f"unknown model {exc.args[0]!r}") from None
    return names, codes[: a.size], codes[a.size :]


def _outcome_array(outcome: Sequence[Any] | Array, size: int) -> Array:
    y = np.asarray(outcome)
    if y.dtype.kind in "USO":
        y = outcome_from_winner(y)
    y = y.astype(np.float64)
    if y.shape != (size,):
        raise ValueError("outcome must have one value per battle")
    if not np.isin(y, (0.0, 0.5, 1.0)).all():
        raise ValueError("outcome values must be 1.0 (A wins), 0.0 (B wins) or 0.5 (tie)")
    return y


def aggregate(
    model_a: Sequence[Any] | Array,
    model_b: Sequence[Any] | Array,
    outcome: Sequence[Any] | Array,
    models: Sequence[str] | None = None,
) -> CountTable:
    """Collapse per-battle arrays into a :class:`CountTable` (one row per unordered pair).

    A battle (a, b) with a > b is stored as (b, a) with the outcome flipped: Bradley-Terry has
    no first-position advantage, so orientation carries no information. Battles of a model
    against itself (public files hold a few) say nothing about ratings and are left out.
    """
    names, a, b = encode_models(model_a, model_b, models)
    y = _outcome_array(outcome, a.size)
    keep = a != b
    if not keep.all():
        a, b, y = a[keep], b[keep], y[keep]
    swap = a > b
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    code = (2 - 2 * y).astype(np.int64)  # 0: i wins, 1: tie, 2: j wins
    code = np.where(swap, 2 - code, code)
    m = len(names)
    key = lo * m + hi
    if m * m <= 4_000_000:  # dense bincount: one pass, no sort
        counts = np.bincount(key * 3 + code, minlength=m * m * 3).reshape(m * m, 3)
        cells = np.flatnonzero(counts.any(axis=1))
        counts = counts[cells]
    else:
        cells, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse * 3 + code, minlength=cells.size * 3).reshape(-1, 3)
    counts = counts.astype(np.float64)
    return CountTable(names, cells // m, cells % m, counts[:, 0], counts[:, 1], counts[:, 2])
