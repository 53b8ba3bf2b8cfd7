"""95% confidence intervals: sandwich (robust) and multinomial bootstrap; rank (UB)."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

import numpy as np
from scipy import special

from arena.ratings.bradley_terry import (
    BTFit,
    _compact,
    _laplacian,
    _rating_map,
    _resolve_anchor,
    _to_ratings,
)
from arena.ratings.common import AUTO_L2, Array, CountTable

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
    z = NormalDist().inv_cdf(0.5 + level / 2)  # scipy.stats takes half a second to import
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
