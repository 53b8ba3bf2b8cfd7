"""Arena ratings: online Elo, Bradley-Terry maximum likelihood with confidence intervals,
style control, leaderboards and the pair-sampling rule.

Pure NumPy/SciPy: this module never imports Django. Every function takes arrays (or plain
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
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import optimize, sparse, special, stats
from scipy.sparse import csgraph

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


# --------------------------------------------------------------------------- online Elo


@dataclass(frozen=True)
class EloResult:
    models: list[str]
    ratings: Array  # (M,)


def elo_update(
    r_a: float,
    r_b: float,
    outcome: float,
    k: float = ELO_K,
    scale: float = SCALE,
    base: float = BASE,
) -> tuple[float, float]:
    """One Elo step: both ratings move by ``k * (score - expected)``; the sum is conserved."""
    expected_a = 1.0 / (1.0 + base ** ((r_b - r_a) / scale))
    delta = k * (outcome - expected_a)
    return r_a + delta, r_b - delta


def elo_online(
    model_a: Sequence[Any] | Array,
    model_b: Sequence[Any] | Array,
    outcome: Sequence[Any] | Array,
    *,
    models: Sequence[str] | None = None,
    k: float = ELO_K,
    scale: float = SCALE,
    base: float = BASE,
    initial: float = INITIAL_RATING,
) -> EloResult:
    """Sequential Elo over battles in the order given (order matters: it is the live number).

    A plain Python loop: each step depends on the previous one, and lists of floats are the
    fastest sequential container CPython has (about 0.5 s per million battles).
    """
    names, a, b = encode_models(model_a, model_b, models)
    y = _outcome_array(outcome, a.size)
    ratings = [float(initial)] * len(names)
    log_base = math.log(base) / scale
    for ia, ib, s in zip(a.tolist(), b.tolist(), y.tolist(), strict=True):
        ra, rb = ratings[ia], ratings[ib]
        delta = k * (s - 1.0 / (1.0 + math.exp((rb - ra) * log_base)))
        ratings[ia] = ra + delta
        ratings[ib] = rb - delta
    return EloResult(names, np.array(ratings))


# --------------------------------------------------------------------------- Bradley-Terry


@dataclass(frozen=True)
class BTFit:
    """A Bradley-Terry fit. Unrated models (no votes) have NaN rating and beta."""

    models: list[str]
    ratings: Array  # (M,) rating points
    beta: Array  # (M,) natural log-strengths
    votes: Array  # (M,)
    hessian: Array  # (M, M) Hessian of the summed negative log-likelihood (incl. l2) in beta
    grad_norm: float  # ||gradient of the mean negative log-likelihood|| at the solution
    iterations: int
    l2: float
    identifiable: bool
    anchor: tuple[str, float] | None = None

    @property
    def rated(self) -> Array:  # (M,) bool
        return self.votes > 0


def _laplacian(i: Array, j: Array, w: Array, m: int) -> Array:
    """Sum of w_c (e_i - e_j)(e_i - e_j)^T over cells; cells must be unique pairs."""
    lap = np.zeros((m, m))  # (M, M)
    lap[i, j] = -w
    lap[j, i] = -w
    lap[np.diag_indices(m)] = np.bincount(i, w, m) + np.bincount(j, w, m)
    return lap


def _bt_objective(
    beta: Array, i: Array, j: Array, s: Array, n: Array, total: float, lam: float
) -> tuple[float, Array]:
    """Mean negative log-likelihood and gradient; per cell: n*log(1+e^d) - s*d, d = b_i - b_j."""
    d = beta[i] - beta[j]  # (C,)
    loss = (n @ np.logaddexp(0.0, d) - s @ d + 0.5 * lam * beta @ beta) / total
    r = n * special.expit(d) - s
    m = beta.size
    grad = (np.bincount(i, r, m) - np.bincount(j, r, m) + lam * beta) / total
    return float(loss), grad


def _bt_hessian(beta: Array, i: Array, j: Array, n: Array, lam: float) -> Array:
    p = special.expit(beta[i] - beta[j])
    return _laplacian(i, j, n * p * (1.0 - p), beta.size) + lam * np.eye(beta.size)


def _solve_centred(hess: Array, grad: Array, centred: bool) -> Array:
    """Newton direction. Without a prior the likelihood is flat along (1, ..., 1); adding
    c * J/m makes the system regular and, as the gradient sums to zero, keeps the step centred."""
    if centred:
        hess = hess + np.mean(np.diag(hess)) / hess.shape[0]
    return np.linalg.solve(hess, grad)


def _newton_polish(
    beta: Array, cells: tuple[Array, Array, Array, Array], total: float, lam: float, tol: float
) -> tuple[Array, float, int]:
    """Newton steps with backtracking until the gradient norm is below ``tol``."""
    i, j, s, n = cells
    loss, grad = _bt_objective(beta, i, j, s, n, total, lam)
    steps = 0
    for steps in range(1, 51):
        if np.linalg.norm(grad) < tol:
            return beta, float(np.linalg.norm(grad)), steps - 1
        step = _solve_centred(_bt_hessian(beta, i, j, n, lam) / total, grad, lam == 0.0)
        t = 1.0
        while True:
            cand = beta - t * step
            new_loss, new_grad = _bt_objective(cand, i, j, s, n, total, lam)
            # Near the optimum the loss changes below rounding, so also accept a smaller gradient.
            if new_loss <= loss + 1e-13 * abs(loss) or t < 1e-10:
                break
            t /= 2
        if np.linalg.norm(new_grad) >= np.linalg.norm(grad) and new_loss >= loss:
            break  # no more progress at machine precision
        beta, loss, grad = cand, new_loss, new_grad
    return beta, float(np.linalg.norm(grad)), steps


def _lbfgs(
    cells: tuple[Array, Array, Array, Array], m: int, total: float, lam: float
) -> tuple[Array, int]:
    """L-BFGS from zero in variables scaled by the square root of the Hessian's diagonal at
    zero (a model's share of battles / 4): without it, models with few votes make the problem
    ill-conditioned and L-BFGS needs hundreds of iterations instead of tens."""
    i, j, s, n = cells
    scale = np.sqrt((0.25 * (np.bincount(i, n, m) + np.bincount(j, n, m)) + lam) / total)  # (M,)

    def objective(z: Array) -> tuple[float, Array]:
        loss, grad = _bt_objective(z / scale, i, j, s, n, total, lam)
        return loss, grad / scale

    res = optimize.minimize(
        objective,
        np.zeros(m),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 500, "gtol": 1e-9, "ftol": 1e-15},
    )
    return res.x / scale, int(res.nit)


def _strongly_connected(i: Array, j: Array, s: Array, n: Array, m: int) -> bool:
    """Ford's condition for a finite MLE: in the digraph "x scored against y" (a win or a tie)
    every model can reach every other one."""
    if m <= 1:
        return True
    src = np.concatenate([i[s > 0], j[n - s > 0]])
    dst = np.concatenate([j[s > 0], i[n - s > 0]])
    graph = sparse.coo_matrix((np.ones(src.size), (src, dst)), shape=(m, m))
    n_comp, _ = csgraph.connected_components(graph, directed=True, connection="strong")
    return n_comp == 1


def _rating_map(m: int, anchor_index: int | None) -> Array:
    """Linear map from beta (rated models) to rating points minus the constant offset."""
    ref = np.full(m, 1.0 / m) if anchor_index is None else np.eye(m)[anchor_index]
    return (np.eye(m) - ref[None, :]) / NAT  # (M, M)


def _to_ratings(beta: Array, anchor: tuple[int, float] | None) -> Array:
    """beta (..., M) -> rating points (..., M): mean 1000, or anchor model at its rating."""
    points = beta / NAT
    if anchor is None:
        return points - points.mean(axis=-1, keepdims=True) + INITIAL_RATING
    k, value = anchor
    return points - points[..., [k]] + value


def _compact(table: CountTable) -> tuple[Array, tuple[Array, Array, Array, Array]]:
    """Rated models and the cell arrays re-indexed over them."""
    rated = np.flatnonzero(table.votes > 0)
    position = np.full(table.n_models, -1)
    position[rated] = np.arange(rated.size)
    return rated, (position[table.i], position[table.j], table.score_i, table.n)


def _resolve_anchor(
    models: list[str], rated: Array, anchor: tuple[str, float] | None
) -> tuple[int, float] | None:
    if anchor is None:
        return None
    name, value = anchor
    if name not in models:
        raise ValueError(f"anchor model {name!r} is not in the model list")
    hits = np.flatnonzero(rated == models.index(name))
    if hits.size == 0:
        raise ValueError(f"anchor model {name!r} has no votes")
    return int(hits[0]), float(value)


def bradley_terry(
    table: CountTable,
    *,
    anchor: tuple[str, float] | None = None,
    l2: float | None = None,
    tol: float = 1e-10,
) -> BTFit:
    """Maximum-likelihood Bradley-Terry ratings on aggregated counts, ties as half a win.

    L-BFGS with the analytic gradient gets close, then Newton steps with the analytic Hessian
    polish until ``||grad of the mean NLL|| < tol`` (typically ~1e-15).

    ``l2`` is a Gaussian prior precision on the natural log-strengths (a ridge term
    ``l2/2 * ||beta||^2`` added to the summed NLL). ``None`` means automatic: 0 when the MLE
    exists (Ford's condition: the "scored against" graph is strongly connected), else
    ``AUTO_L2`` = 1e-4, i.e. a prior sd of 100 log-odds units (~17,000 rating points), which only
    decides the directions the data leave free: a model that never lost gets a large but finite
    rating, and each disconnected group is centred on its own. ``l2=0`` on data that violate
    Ford's condition raises ``ValueError``. Models with no votes are not fitted: NaN rating.
    """
    names, m_all = table.models, table.n_models
    rated, cells = _compact(table)
    i, j, s, n = cells
    m = rated.size
    anchor_idx = _resolve_anchor(names, rated, anchor)
    identifiable = _strongly_connected(i, j, s, n, m)
    if l2 == 0.0 and not identifiable:
        raise ValueError("ratings are not identifiable from these battles; pass l2 > 0")
    lam = float(l2) if l2 is not None else (0.0 if identifiable else AUTO_L2)
    total = max(float(n.sum()), 1.0)
    beta, grad_norm, iterations = np.zeros(m), 0.0, 0
    if m > 0:
        beta, iterations = _lbfgs(cells, m, total, lam)
        beta, grad_norm, polish = _newton_polish(beta, cells, total, lam, tol)
        iterations += polish
        beta = beta - beta.mean()
    full_beta = np.full(m_all, np.nan)
    full_beta[rated] = beta
    full_ratings = np.full(m_all, np.nan)
    full_ratings[rated] = _to_ratings(beta, anchor_idx) if m else beta
    hess = np.zeros((m_all, m_all))
    hess[np.ix_(rated, rated)] = _bt_hessian(beta, i, j, n, lam)
    return BTFit(
        names,
        full_ratings,
        full_beta,
        table.votes,
        hess,
        grad_norm,
        iterations,
        lam,
        identifiable,
        anchor,
    )


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class RatingCI:
    """Confidence intervals in rating points. ``cov`` is the covariance of the ratings
    (sandwich, or the sample covariance of the bootstrap); ``samples`` the bootstrap ratings."""

    lower: Array  # (M,)
    upper: Array  # (M,)
    cov: Array  # (M, M)
    method: str
    level: float
    samples: Array | None = field(default=None, repr=False)  # (R, M)


def _bread_inverse(hess: Array, m: int, centred: bool) -> Array:
    """Inverse Hessian on the identified subspace. Without a prior the first ``m`` coordinates
    (the log-strengths) are free along (1, ..., 1, 0, ...); (H + u u^T)^-1 - u u^T with the unit
    vector u of that direction is then the Moore-Penrose inverse."""
    if not centred:
        return np.linalg.inv(hess)
    shift = np.zeros_like(hess)
    shift[:m, :m] = 1.0 / m
    return np.linalg.inv(hess + shift) - shift


def _empty_interval(m: int, level: float, method: str) -> RatingCI:
    """Intervals for a table without a single rated model: all NaN."""
    nan = np.full(m, np.nan)
    return RatingCI(nan, nan.copy(), np.full((m, m), np.nan), method, level)


def _normal_interval(
    fit_ratings: Array, cov: Array, rated: Array, level: float, method: str
) -> RatingCI:
    z = stats.norm.ppf(0.5 + level / 2)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    full_cov = np.full((fit_ratings.size, fit_ratings.size), np.nan)
    full_cov[np.ix_(rated, rated)] = cov
    lower, upper = np.full(fit_ratings.size, np.nan), np.full(fit_ratings.size, np.nan)
    lower[rated] = fit_ratings[rated] - z * sd
    upper[rated] = fit_ratings[rated] + z * sd
    return RatingCI(lower, upper, full_cov, method, level)


def sandwich_ci(
    fit: BTFit,
    table: CountTable,
    *,
    level: float = 0.95,
    cluster: Literal["battle", "cell"] = "battle",
) -> RatingCI:
    """Normal intervals from the robust (sandwich) covariance H^-1 B H^-1.

    ``cluster="battle"``: B sums the squared per-battle scores (Huber-White), computed from the
    counts because a battle's score depends only on its cell and outcome (that is why ties are
    kept apart in the table). ``cluster="cell"``: scores are summed per pair first, which also
    absorbs extra variation between pairs (fewer clusters, so noisier).
    """
    rated, (i, j, s, n) = _compact(table)
    if rated.size == 0:
        return _empty_interval(table.n_models, level, "sandwich")
    beta = fit.beta[rated]
    p = special.expit(beta[i] - beta[j])  # (C,)
    if cluster == "battle":
        meat_w = table.wins_i * (1 - p) ** 2 + table.ties * (0.5 - p) ** 2 + table.wins_j * p**2
    elif cluster == "cell":
        meat_w = (s - n * p) ** 2
    else:
        raise ValueError("cluster must be 'battle' or 'cell'")
    bread = _bread_inverse(fit.hessian[np.ix_(rated, rated)], rated.size, fit.l2 == 0.0)
    cov_beta = bread @ _laplacian(i, j, meat_w, rated.size) @ bread
    anchor = _resolve_anchor(fit.models, rated, fit.anchor)
    tmap = _rating_map(rated.size, None if anchor is None else anchor[0])
    return _normal_interval(fit.ratings, tmap @ cov_beta @ tmap.T, rated, level, "sandwich")


def _batched_laplacian(h: Array, i: Array, j: Array, abs_inc: Array, m: int) -> Array:
    out = np.zeros((h.shape[0], m * m))  # (R, M*M)
    out[:, i * m + j] = -h
    out[:, j * m + i] = -h
    out[:, :: m + 1] = h @ abs_inc  # (R, M) degrees
    return out.reshape(-1, m, m)


def _batched_state(
    beta: Array, cells: tuple[Array, Array, Array, Array], inc: Array, lam: float
) -> tuple[Array, Array, Array]:
    """Summed NLL (R,), its gradient (R, M) and win probabilities (R, C) for R problems."""
    i, j, s, n = cells
    d = beta[:, i] - beta[:, j]  # (R, C)
    loss = (n * np.logaddexp(0.0, d) - s * d).sum(axis=1) + 0.5 * lam * (beta * beta).sum(axis=1)
    p = special.expit(d)
    return loss, (n * p - s) @ inc + lam * beta, p


def _batched_direction(
    p: Array, grad: Array, cells: tuple[Array, Array, Array, Array], inc: Array, lam: float
) -> Array:
    """Newton directions (R, M) from the batched Hessians (R, M, M)."""
    i, j, _, n = cells
    m = grad.shape[1]
    hess = _batched_laplacian(n * p * (1.0 - p), i, j, np.abs(inc), m)  # (R, M, M)
    diag = hess[:, np.arange(m), np.arange(m)]  # (R, M) copy
    scale = diag.mean(axis=1)  # (R,)
    # The tiny ridge keeps a model that drew no battles in a resample from making H singular.
    hess[:, np.arange(m), np.arange(m)] = diag + lam + 1e-12 * scale[:, None]
    if lam == 0.0:
        hess += (scale / m)[:, None, None]  # c * J/m, as in _solve_centred
    step = np.linalg.solve(hess, grad[..., None])[..., 0]
    # Trust region: far from the optimum curvature vanishes and raw steps overshoot.
    big = np.abs(step).max(axis=1, keepdims=True)  # (R, 1)
    return step * np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))


_MAX_STEP = 4.0  # natural log-odds units (~700 rating points) per Newton step


def batched_fit(
    beta0: Array,
    i: Array,
    j: Array,
    s: Array,
    n: Array,
    *,
    lam: float = 0.0,
    tol: float = 1e-9,
    max_iter: int = 50,
) -> Array:
    """Newton's method on R Bradley-Terry problems that share cells but not counts.

    beta0 (R, M) warm start; s, n (R, C) score and battle counts per round. A round stops once
    ||grad of its mean NLL|| < tol. Each round backtracks on its own when a step raises its loss;
    the loss at a new point is computed together with the gradient there, so a Newton step costs
    one pass over the cells plus one batched solve.
    """
    rounds, m = beta0.shape
    beta = beta0.copy()
    inc = np.zeros((i.size, m))  # (C, M) signed incidence: +1 at i, -1 at j
    inc[np.arange(i.size), i] = 1.0
    inc[np.arange(i.size), j] = -1.0
    total = np.maximum(n.sum(axis=1), 1.0)  # (R,)
    active = np.arange(rounds)
    base, step = beta.copy(), np.zeros_like(beta)  # (R, M): last accepted point, its step
    t, merit = np.zeros(rounds), np.full(rounds, np.inf)  # step length, loss at base
    for _ in range(max_iter):
        loss, grad, p = _batched_state(beta[active], (i, j, s[active], n[active]), inc, lam)
        worse = (loss > merit[active] + 1e-13 * np.abs(merit[active])) & (t[active] > 1e-10)
        if worse.any():  # halve the step of rounds whose loss rose
            back = active[worse]
            t[back] /= 2
            beta[back] = base[back] - t[back, None] * step[back]
        done = ~worse & (np.linalg.norm(grad, axis=1) / total[active] < tol)
        fresh = ~worse & ~done
        rows = active[fresh]
        if rows.size:
            cells = (i, j, s[rows], n[rows])
            step[rows] = _batched_direction(p[fresh], grad[fresh], cells, inc, lam)
            base[rows], merit[rows], t[rows] = beta[rows], loss[fresh], 1.0
            beta[rows] = base[rows] - step[rows]
        active = active[~done]
        if active.size == 0:
            break
    return beta


def bootstrap_ci(
    fit: BTFit,
    table: CountTable,
    *,
    rounds: int = 1000,
    seed: int | None = 0,
    level: float = 0.95,
    max_chunk_floats: int = 4_000_000,
) -> RatingCI:
    """Percentile intervals from a multinomial bootstrap over the count table.

    Resampling N battles with replacement is the same as drawing the (pair, outcome) cell counts
    from Multinomial(N, observed cell frequencies), so each round costs O(cells), not O(N).
    All rounds are refitted together by batched Newton, warm-started at the point estimate;
    rounds go in chunks of about ``max_chunk_floats`` (R x max(C, M^2)) numbers to bound memory.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    rng = np.random.default_rng(seed)
    rated, (i, j, _, _) = _compact(table)
    m, c = rated.size, i.size
    if m == 0:
        return _empty_interval(table.n_models, level, "bootstrap")
    counts = np.stack([table.wins_i, table.ties, table.wins_j], axis=1).ravel()  # (3C,)
    keep = np.flatnonzero(counts > 0)
    total = int(round(counts.sum()))
    probs = counts[keep] / counts.sum()
    anchor = _resolve_anchor(fit.models, rated, fit.anchor)
    samples = np.full((rounds, table.n_models), np.nan)  # (R, M)
    chunk = max(1, max_chunk_floats // max(c, m * m, 1))
    for start in range(0, rounds, chunk):
        r = min(chunk, rounds - start)
        draws = np.zeros((r, 3 * c))  # (r, 3C)
        draws[:, keep] = rng.multinomial(total, probs, size=r)
        draws = draws.reshape(r, c, 3)
        s = draws[..., 0] + 0.5 * draws[..., 1]  # (r, C)
        n = draws.sum(axis=2)
        beta0 = np.broadcast_to(fit.beta[rated], (r, m))
        # A resample can break Ford's condition (a rare model that won every resampled battle);
        # the AUTO_L2 ridge keeps such a round finite. Elsewhere it shifts a rating by about
        # AUTO_L2 * beta / (votes / 4) log-odds: under 0.01 points even at 10 votes.
        beta = batched_fit(beta0, i, j, s, n, lam=max(fit.l2, AUTO_L2))
        samples[start : start + r, rated] = _to_ratings(beta, anchor)
    return _percentile_interval(samples, rated, level)


def _percentile_interval(samples: Array, rated: Array, level: float) -> RatingCI:
    """Percentile intervals and sample covariance from bootstrap ratings (R, M)."""
    m_all = samples.shape[1]
    if rated.size == 0:
        return _empty_interval(m_all, level, "bootstrap")
    alpha = 100 * (1.0 - level) / 2
    lower, upper = np.full(m_all, np.nan), np.full(m_all, np.nan)
    lower[rated], upper[rated] = np.percentile(samples[:, rated], [alpha, 100 - alpha], axis=0)
    cov = np.full((m_all, m_all), np.nan)
    if samples.shape[0] > 1:
        cov[np.ix_(rated, rated)] = np.cov(samples[:, rated], rowvar=False).reshape(rated.size, -1)
    return RatingCI(lower, upper, cov, "bootstrap", level, samples)


def rank_ub(lower: Array, upper: Array) -> Array:
    """Arena "rank (UB)": 1 + the number of models whose lower bound is above this model's
    upper bound, i.e. the models that are statistically better. (M,) int."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def rank_spread(lower: Array, upper: Array) -> tuple[Array, Array]:
    """(best, worst) rank consistent with the intervals: best = rank_ub; worst = 1 + the number of
    other models whose upper bound is above this model's lower bound (not statistically worse)."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    not_worse = upper[None, :] > lower[:, None]  # (M, M): column model may rank above row model
    np.fill_diagonal(not_worse, False)
    return rank_ub(lower, upper), 1 + not_worse.sum(axis=1)


# --------------------------------------------------------------------------- style control

_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:\d+\.|[-*+])\s", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def style_features(text: str) -> dict[str, int]:
    """Style counts of one answer, as in LMSYS style control.

    Markdown elements are counted outside fenced code blocks (code is content, not styling);
    length is counted on the whole answer. ``length_tokens`` counts words and punctuation marks,
    a tokenizer-free stand-in for BPE tokens (they are about proportional).
    """
    prose = _CODE_BLOCK.sub("", text)
    return {
        "length_chars": len(text),
        "length_tokens": len(_TOKEN.findall(text)),
        "headers": len(_HEADER.findall(prose)),
        "list_items": len(_LIST_ITEM.findall(prose)),
        "bold": len(_BOLD.findall(prose)),
    }


def style_difference(features_a: Array, features_b: Array) -> Array:
    """(a - b) / (a + b + 1) per feature, (N, F): a relative difference, so "twice as long"
    weighs the same for short and long answers, and bounded in (-1, 1)."""
    fa, fb = np.asarray(features_a, float), np.asarray(features_b, float)
    if fa.shape != fb.shape or fa.ndim != 2:
        raise ValueError("features_a and features_b must both be (N, F)")
    if np.any(fa < 0) or np.any(fb < 0) or not (np.isfinite(fa).all() and np.isfinite(fb).all()):
        raise ValueError("style features must be finite, non-negative counts")
    return (fa - fb) / (fa + fb + 1.0)


@dataclass(frozen=True)
class _StyleData:
    a: Array  # (N,) codes over rated models
    b: Array  # (N,)
    y: Array  # (N,) outcome for A
    x: Array  # (N, F) normalised style differences (varying features only)
    cell: Array  # (N,) index into (ci, cj)
    ci: Array  # (C,)
    cj: Array  # (C,)
    m: int
    varying: Array  # (F,) bool: features that vary, the columns of x


@dataclass(frozen=True)
class StyleFit:
    """Bradley-Terry with style covariates: P(A beats B) = sigmoid(b_A - b_B + x . gamma).

    ``coefficients`` are gamma in log-odds per standard deviation of the normalised feature
    difference; ``coefficient_points`` the same in rating points. Ratings are "controlled for
    style": the strength left once the answers' style differences are accounted for.
    """

    models: list[str]
    ratings: Array  # (M,)
    beta: Array  # (M,)
    votes: Array  # (M,)
    feature_names: list[str]
    coefficients: Array  # (F,)
    feature_mean: Array  # (F,) of the raw relative difference
    feature_std: Array  # (F,)
    hessian: Array  # (m + F', m + F') over rated models and varying features
    grad_norm: float
    iterations: int
    l2: float
    identifiable: bool
    anchor: tuple[str, float] | None = None
    data: _StyleData | None = field(default=None, repr=False)

    @property
    def coefficient_points(self) -> Array:
        return self.coefficients / NAT


def _style_gram(w: Array, data: _StyleData) -> Array:
    """sum_b w_b x_b x_b^T with x_b = (e_a - e_b, features_b); the model block is pooled
    per pair first, the only part of the problem that aggregates."""
    m, f = data.m, data.x.shape[1]
    gram = np.zeros((m + f, m + f))
    gram[:m, :m] = _laplacian(data.ci, data.cj, np.bincount(data.cell, w, data.ci.size), m)
    wx = w[:, None] * data.x  # (N, F)
    for k in range(f):
        gram[:m, m + k] = np.bincount(data.a, wx[:, k], m) - np.bincount(data.b, wx[:, k], m)
    gram[m:, :m] = gram[:m, m:].T
    gram[m:, m:] = data.x.T @ wx
    return gram


def _style_objective(
    theta: Array, data: _StyleData, lam: float, weights: Array | None
) -> tuple[float, Array, Array]:
    """Mean weighted NLL, its gradient, and p (N,) for the Hessian."""
    m = data.m
    d = theta[:m][data.a] - theta[:m][data.b] + data.x @ theta[m:]  # (N,)
    w = np.ones_like(d) if weights is None else weights
    total = max(float(w.sum()), 1.0)
    loss = w @ (np.logaddexp(0.0, d) - data.y * d) + 0.5 * lam * theta @ theta
    p = special.expit(d)
    r = w * (p - data.y)
    grad = (
        np.concatenate([np.bincount(data.a, r, m) - np.bincount(data.b, r, m), data.x.T @ r])
        + lam * theta
    )
    return float(loss / total), grad / total, p


def _style_newton(
    theta: Array, data: _StyleData, lam: float, weights: Array | None, tol: float
) -> tuple[Array, float, int]:
    """Damped Newton on the (convex) style likelihood; returns theta, ||grad||, iterations."""
    w = np.ones(data.y.size) if weights is None else weights
    total = max(float(w.sum()), 1.0)
    loss, grad, p = _style_objective(theta, data, lam, weights)
    for it in range(100):
        if np.linalg.norm(grad) < tol:
            return theta, float(np.linalg.norm(grad)), it
        hess = (_style_gram(w * p * (1 - p), data) + lam * np.eye(theta.size)) / total
        step = np.linalg.solve(hess + _centre_shift(hess, data.m, lam == 0.0), grad)
        t = 1.0
        while True:
            new = _style_objective(theta - t * step, data, lam, weights)
            if new[0] <= loss + 1e-13 * abs(loss) or t < 1e-10:
                break
            t /= 2
        if np.linalg.norm(new[1]) >= np.linalg.norm(grad) and new[0] >= loss:
            break
        theta, (loss, grad, p) = theta - t * step, new
    return theta, float(np.linalg.norm(grad)), it


def _centre_shift(hess: Array, m: int, centred: bool) -> Array:
    shift = np.zeros_like(hess)
    if centred:
        shift[:m, :m] = np.mean(np.diag(hess)[:m]) / m
    return shift


def _style_inputs(
    model_a: Sequence[Any] | Array,
    model_b: Sequence[Any] | Array,
    outcome: Sequence[Any] | Array,
    features_a: Array,
    features_b: Array,
    models: Sequence[str] | None,
    normalise: bool,
) -> tuple[CountTable, _StyleData, Array, Array, Array]:
    """Count table, per-battle data over rated models, and (mean, std, varying) of features.
    Self-battles are dropped, as in :func:`aggregate`."""
    names, a, b = encode_models(model_a, model_b, models)
    y = _outcome_array(outcome, a.size)
    diff = style_difference(features_a, features_b)  # (N, F)
    if diff.shape[0] != a.size:
        raise ValueError("style features must have one row per battle")
    keep = a != b
    a, b, y, diff = a[keep], b[keep], y[keep], diff[keep]
    table = aggregate(a, b, y, names)
    rated, (ci, cj, _, _) = _compact(table)
    position = np.full(len(names), -1)
    position[rated] = np.arange(rated.size)
    a, b = position[a], position[b]
    spread = diff.std(axis=0) if a.size else np.zeros(diff.shape[1])
    varying = spread > 1e-12  # a constant column would make the Hessian singular
    mean = diff.mean(axis=0) if normalise and a.size else np.zeros(diff.shape[1])
    std = spread if normalise else np.ones(diff.shape[1])
    x = (diff[:, varying] - mean[varying]) / std[varying]  # (N, F')
    key = np.minimum(a, b) * rated.size + np.maximum(a, b)  # (N,)
    if rated.size**2 <= 4_000_000:  # a dense key -> cell table beats a binary search
        lookup = np.zeros(rated.size**2, dtype=np.int64)
        lookup[ci * rated.size + cj] = np.arange(ci.size)
        cell = lookup[key]
    else:
        cell = np.searchsorted(ci * rated.size + cj, key)  # cells are sorted by key
    data = _StyleData(a, b, y, x, cell, ci, cj, rated.size, varying)
    return table, data, mean, std, varying


def style_control(
    model_a: Sequence[Any] | Array,
    model_b: Sequence[Any] | Array,
    outcome: Sequence[Any] | Array,
    features_a: Array,
    features_b: Array,
    *,
    feature_names: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    anchor: tuple[str, float] | None = None,
    l2: float | None = None,
    normalise: bool = True,
    tol: float = 1e-10,
) -> StyleFit:
    """Style-controlled Bradley-Terry (LMSYS "style control").

    features_a/b (N, F) are raw per-answer counts (e.g. from :func:`style_features`); each enters
    as the relative difference (a - b)/(a + b + 1), standardised over battles when
    ``normalise``. Features that never vary get coefficient 0. Continuous covariates cannot be
    pooled, so the fit runs over battles, but the model-by-model block of the Hessian is pooled per
    pair. Newton starts from the plain Bradley-Terry fit. ``l2`` as in :func:`bradley_terry`.
    """
    table, data, mean, std, varying = _style_inputs(
        model_a, model_b, outcome, features_a, features_b, models, normalise
    )
    plain = bradley_terry(table, l2=l2)
    rated = np.flatnonzero(plain.rated)
    theta0 = np.concatenate([plain.beta[rated], np.zeros(data.x.shape[1])])
    theta, grad_norm, iterations = _style_newton(theta0, data, plain.l2, None, tol)
    beta = theta[: data.m] - (theta[: data.m].mean() if data.m else 0.0)
    full_beta, ratings = np.full(table.n_models, np.nan), np.full(table.n_models, np.nan)
    full_beta[rated] = beta
    anchor_idx = _resolve_anchor(table.models, rated, anchor)
    ratings[rated] = _to_ratings(beta, anchor_idx) if rated.size else beta
    coefficients = np.zeros(mean.size)
    coefficients[varying] = theta[data.m :]
    _, _, p = _style_objective(theta, data, plain.l2, None)
    hess = _style_gram(p * (1 - p), data) + plain.l2 * np.eye(theta.size)
    names = [f"f{k}" for k in range(mean.size)] if feature_names is None else list(feature_names)
    return StyleFit(
        table.models,
        ratings,
        full_beta,
        table.votes,
        names,
        coefficients,
        mean,
        std,
        hess,
        grad_norm,
        iterations,
        plain.l2,
        plain.identifiable,
        anchor,
        data,
    )


def _style_sandwich_cov(fit: StyleFit) -> Array:
    """Robust covariance of (log-strengths of rated models, varying coefficients)."""
    data = fit.data
    if data is None:
        raise ValueError("this StyleFit carries no battle data")
    theta = _style_theta(fit, np.flatnonzero(fit.votes > 0))
    _, _, p = _style_objective(theta, data, fit.l2, None)
    meat = _style_gram((data.y - p) ** 2, data)
    bread = _bread_inverse(fit.hessian, data.m, fit.l2 == 0.0)
    return bread @ meat @ bread


def style_sandwich_ci(fit: StyleFit, *, level: float = 0.95) -> RatingCI:
    """Sandwich intervals for style-controlled ratings, clustered on battles."""
    rated = np.flatnonzero(fit.votes > 0)
    if rated.size == 0:
        return _empty_interval(len(fit.models), level, "sandwich")
    cov = _style_sandwich_cov(fit)[: rated.size, : rated.size]
    anchor = _resolve_anchor(fit.models, rated, fit.anchor)
    tmap = _rating_map(rated.size, None if anchor is None else anchor[0])
    return _normal_interval(fit.ratings, tmap @ cov @ tmap.T, rated, level, "sandwich")


def style_coefficient_se(fit: StyleFit) -> Array:
    """Sandwich standard errors of ``fit.coefficients`` (F,), log-odds per SD; 0 for features
    that never varied."""
    rated = np.flatnonzero(fit.votes > 0)
    se = np.zeros(fit.coefficients.size)
    cov = _style_sandwich_cov(fit)  # checks that fit.data is there
    se[fit.data.varying] = np.sqrt(np.diag(cov)[rated.size :])  # type: ignore[union-attr]
    return se


def _style_theta(fit: StyleFit, rated: Array) -> Array:
    varying = fit.data.varying  # type: ignore[union-attr]
    return np.concatenate([fit.beta[rated], fit.coefficients[varying]])


def style_bootstrap_ci(
    fit: StyleFit, *, rounds: int = 100, seed: int | None = 0, level: float = 0.95
) -> RatingCI:
    """Percentile intervals by resampling battles (multinomial weights per battle).

    Covariates are per battle, so each round is a weighted refit over all N battles (a few Newton
    steps from the point estimate, with the same AUTO_L2 guard as :func:`bootstrap_ci`): about
    half a second per round per million battles, hence the lower default;
    :func:`style_sandwich_ci` is the fast alternative.
    """
    data = fit.data
    if data is None:
        raise ValueError("this StyleFit carries no battle data")
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    rng = np.random.default_rng(seed)
    rated = np.flatnonzero(fit.votes > 0)
    if rated.size == 0:
        return _empty_interval(len(fit.models), level, "bootstrap")
    theta0 = _style_theta(fit, rated)
    anchor = _resolve_anchor(fit.models, rated, fit.anchor)
    samples = np.full((rounds, len(fit.models)), np.nan)  # (R, M)
    n = data.y.size
    for r in range(rounds):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        theta, _, _ = _style_newton(theta0, data, max(fit.l2, AUTO_L2), weights, 1e-9)
        samples[r, rated] = _to_ratings(theta[: data.m], anchor)
    return _percentile_interval(samples, rated, level)


# --------------------------------------------------------------------------- plots and sampling


def battle_count_matrix(table: CountTable) -> Array:
    """(M, M) symmetric number of battles per pair."""
    counts = np.zeros((table.n_models, table.n_models))
    counts[table.i, table.j] = table.n
    counts[table.j, table.i] = table.n
    return counts


def win_fraction_matrix(table: CountTable) -> Array:
    """(M, M): row model's share of points against the column model (ties as half); NaN where
    the pair never met."""
    frac = np.full((table.n_models, table.n_models), np.nan)
    frac[table.i, table.j] = table.score_i / table.n
    frac[table.j, table.i] = 1.0 - table.score_i / table.n
    return frac


def predicted_win_matrix(ratings: Array) -> Array:
    """(M, M): P(row beats column) implied by Elo-scale ratings."""
    r = np.asarray(ratings, float)
    return special.expit((r[:, None] - r[None, :]) * NAT)


def pair_sampling_weights(
    *,
    ratings: Array,
    cov: Array,
    votes: Array,
    floor: float = 0.05,
    few_votes: float = 100.0,
    boost: float = 1.0,
    prior_sd: float = 400.0,
) -> tuple[Array, Array]:
    """Probability of drawing each pair next, so that the leaderboard's order settles fastest.

    For a pair (i, j) with rating gap g and standard deviation s of that gap (from ``cov``):

    * ``overlap = 2 * Phi(-|g| / s)``: 1 when the two are indistinguishable, -> 0 once their
      order is clear; an already-settled pair gains little from another battle;
    * ``gain = s - 1 / sqrt(1/s^2 + p(1-p))`` (natural units): how much one more battle of that
      pair shrinks s, p being the predicted win chance (the active-sampling rule of the Chatbot
      Arena paper, in information form);
    * ``1 + boost * few_votes / (few_votes + min(votes_i, votes_j))``: newcomers first.

    Weights are normalised and mixed with the uniform distribution, ``(1 - floor) * w/sum(w) +
    floor / P``, so every pair keeps a chance. Models without a rating (NaN) count as unknown:
    gap 0 and sd ``prior_sd``. Returns pairs (P, 2) with i < j and probabilities (P,).
    """
    r, votes = np.asarray(ratings, float), np.asarray(votes, float)
    cov = np.asarray(cov, float)
    i, j = np.triu_indices(r.size, 1)
    known = np.isfinite(r[i]) & np.isfinite(r[j])
    var = cov[i, i] + cov[j, j] - 2 * cov[i, j]  # (P,) rating points^2
    var = np.where(known & np.isfinite(var) & (var > 0), var, prior_sd**2)
    gap = np.where(known, np.abs(np.nan_to_num(r[i] - r[j])), 0.0)
    sd = np.sqrt(var)
    overlap = 2.0 * stats.norm.sf(gap / sd)
    p = special.expit(gap * NAT)
    sd_nat = sd * NAT
    gain = sd_nat - 1.0 / np.sqrt(1.0 / sd_nat**2 + p * (1 - p))
    newcomer = 1.0 + boost * few_votes / (few_votes + np.minimum(votes[i], votes[j]))
    w = overlap * gain * newcomer
    pairs = np.stack([i, j], axis=1)
    if i.size == 0:
        return pairs, np.zeros(0)
    share = w / w.sum() if w.sum() > 0 else np.full(i.size, 1.0 / i.size)
    return pairs, (1.0 - floor) * share + floor / i.size


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
        fit: BTFit | StyleFit = style_control(
            a,
            b,
            y,
            features_a,
            features_b,
            feature_names=feature_names,
            models=names,
            anchor=anchor,
            l2=l2,
        )
        interval = (
            style_sandwich_ci(fit, level=level)
            if ci == "sandwich"
            else style_bootstrap_ci(fit, rounds=rounds, seed=seed, level=level)
        )
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
        names,
        fit.ratings,
        interval.lower,
        interval.upper,
        table.votes,
        wins,
        ties,
        losses,
        elo,
        interval,
        fit,
        coefficients,
    )


def leaderboard_rows(report: RatingReport, *, min_votes: int = 1) -> list[dict[str, Any]]:
    """One dict per model with at least ``max(min_votes, 1)`` votes, best first. Ranks are
    computed among the models shown."""
    shown = np.flatnonzero(report.votes >= max(min_votes, 1))
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
