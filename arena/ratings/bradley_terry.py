"""The Bradley-Terry maximum-likelihood fit on aggregated counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from arena.ratings.common import AUTO_L2, INITIAL_RATING, NAT, Array, CountTable

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
    from scipy import optimize  # on first use: a third of a second to import

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
    from scipy import sparse  # on first use
    from scipy.sparse import csgraph

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
