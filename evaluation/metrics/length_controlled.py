"""Length-controlled win rates: AlpacaEval 2.0's GLM, fitted with NumPy/SciPy alone.

The model (Dubois et al. 2024, "Length-Controlled AlpacaEval", arXiv:2404.04475): the judge's
probability that contestant m beats the baseline on instruction x is

    P(m > b | x) = sigmoid(theta_m + phi_m * tanh(delta_mx / sd_m) + psi_m * gamma_x)

with ``delta_mx`` = len(m's answer) - len(baseline's answer) in characters, ``sd_m`` the sample
standard deviation (ddof=1) of m's deltas, ``theta_m`` the model's bias, ``phi_m`` its length
term, ``gamma_x`` the instruction's difficulty and ``psi_m`` how much it matters for m. The
length-controlled win rate is the prediction with no length difference, averaged over m's
instructions: ``LC_m = 100 * mean_x sigmoid(theta_m + psi_m * gamma_x)``.

The preference enters as a soft label ``y = preference - 1`` in [0, 1] (a weighted judge's
probability; a draw is 0.5): the loss is the cross-entropy against y, as AlpacaEval fits it.

How this differs from the published code, and why:

* AlpacaEval reads ``gamma`` from a file fitted once on its whole leaderboard. Here it is
  estimated jointly from the contestants given (:func:`instruction_difficulty`): one logistic
  regression over every (model, instruction) pair with a bias and a length term per model and
  one free ``gamma_x`` per instruction, under a Gaussian prior (L2 penalty ``difficulty_l2``)
  that makes it finite and identifiable (``gamma`` is centred on zero by the penalty; the biases
  take the level). ``gamma_x`` is then a fixed covariate of each model's own fit, as in the
  published two-stage procedure. With few models ``gamma`` is noisy, and a noisy covariate
  pulls ``psi`` towards zero, so LC values move a little with the set of models given.
* AlpacaEval picks an L1 penalty by 5-fold cross-validation (scikit-learn's liblinear) and adds
  the baseline's own "gamed" (verbose / concise) annotations with weight 0.2 to steady the length
  term. Neither the sklearn dependency nor those annotations are available here: each model's
  three coefficients get a small fixed L2 penalty ``l2`` instead, which only matters when the
  data leave a coefficient free (e.g. all answers of equal length).

Standard error of LC: the delta method on the model's three coefficients with a sandwich
(robust) covariance, instructions being the independent units. It treats ``gamma`` and ``sd_m``
as known, so it leaves out the noise of the difficulty estimate.

Fits are Newton's method with backtracking on the convex penalised loss. The joint fit's design
matrix is sparse (rows x (2M + I)) and the difficulty block of its Hessian diagonal, so each
Newton step eliminates that block (Schur complement) and solves a (2M, 2M) system: 50 models x
805 instructions take a fraction of a second, and thousands of instructions cost little more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse, special

from evaluation.metrics.common import Array
from evaluation.metrics.winrate import normalize_preferences

DIFFICULTY_L2 = 1.0  # prior precision of gamma_x: a prior standard deviation of 1 logit
COEF_L2 = 1e-3  # ridge on (theta, phi, psi) and, in the joint fit, on (theta, phi)


@dataclass(frozen=True)
class Judgments:
    """One contestant's judged answers against the baseline; N rows, one per instruction."""

    model: str
    instruction: Array  # (N,) int, index of the row's instruction in a list shared by all models
    preference: Array  # (N,) float in [1, 2] (2 = the contestant preferred); NaN = not judged
    length: Array  # (N,) characters of the contestant's answer (output_2)
    baseline_length: Array  # (N,) characters of the baseline's answer (output_1)


@dataclass(frozen=True)
class LCFit:
    """A contestant's length-controlled win rate (percent) and the GLM behind it."""

    model: str
    length_controlled_winrate: float
    lc_standard_error: float
    bias: float  # theta
    length_coef: float  # phi, per unit of tanh(delta / sd); > 0 = the judge likes longer answers
    difficulty_coef: float  # psi
    covariance: Array  # (3, 3) sandwich covariance of (theta, phi, psi)


def length_feature(length: Array, baseline_length: Array) -> Array:
    """tanh of the length difference (contestant - baseline) over its sample sd: (N,).

    AlpacaEval writes the difference the other way round (baseline - contestant); only the sign
    of the fitted ``phi`` changes, and the prediction at zero difference does not."""
    delta = np.asarray(length, dtype=float) - np.asarray(baseline_length, dtype=float)  # (N,)
    sd = float(np.std(delta, ddof=1)) if delta.size > 1 else 0.0
    if not np.isfinite(sd) or sd == 0.0:
        return np.zeros_like(delta)
    return np.tanh(delta / sd)


def _soft_loss(X, y: Array, l2: Array, beta: Array) -> tuple[float, Array]:
    z = X @ beta  # (R,)
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 @ (beta * beta)), z


def fit_soft_logistic(
    X: Array | sparse.csr_matrix,
    y: Array,
    l2: Array,
    *,
    diagonal_tail: int = 0,
    tol: float = 1e-14,
    max_iter: int = 100,
) -> Array:
    """Penalised logistic regression on soft labels y in [0, 1], no intercept: beta (P,).

    Minimises ``sum_r [log(1 + e^z_r) - y_r z_r] + 1/2 sum_k l2_k beta_k^2`` with z = X beta,
    by Newton's method with backtracking, until the Newton decrement per row is below ``tol``.

    ``diagonal_tail = k`` says that each row has at most one non-zero among the last k columns
    (one-hot instruction effects), so their block of the Hessian is diagonal: each Newton step
    then eliminates it (Schur complement) and costs O((P - k)^2 k) instead of O(P^3). The last
    k penalties must then be positive."""
    n_rows, n_coef = X.shape
    head = n_coef - diagonal_tail
    beta = np.zeros(n_coef)
    loss, z = _soft_loss(X, y, l2, beta)
    for _ in range(max_iter):
        p = special.expit(z)  # (R,)
        grad = X.T @ (p - y) + l2 * beta  # (P,)
        w = p * (1.0 - p)  # (R,)
        if diagonal_tail:
            step = _schur_step(X[:, :head], X[:, head:], w, l2, grad)
        else:
            step = _solve(_weighted_gram(X, w) + np.diag(l2), grad)
        decrement = float(grad @ step)
        if decrement / 2 <= tol * max(n_rows, 1):
            break
        t = 1.0
        while True:
            cand = beta - t * step
            new_loss, new_z = _soft_loss(X, y, l2, cand)
            if new_loss <= loss - 1e-4 * t * decrement or t < 1e-10:
                break
            t /= 2
        if new_loss > loss:
            break  # no progress at machine precision
        beta, loss, z = cand, new_loss, new_z
    return beta


def soft_logistic_hessian(X: Array, beta: Array, l2: Array) -> Array:
    """Hessian (P, P) of the penalised loss of :func:`fit_soft_logistic` at beta."""
    p = special.expit(X @ beta)
    return _weighted_gram(X, p * (1.0 - p)) + np.diag(l2)


def _schur_step(head, tail, w: Array, l2: Array, grad: Array) -> Array:
    """Newton direction H^-1 grad for H = [[A, B], [B^T, D]] with D diagonal."""
    h = head.shape[1]
    a = _weighted_gram(head, w) + np.diag(l2[:h])  # (h, h)
    b = np.asarray((head.T @ tail.multiply(w[:, None])).todense())  # (h, k)
    d = np.asarray(tail.multiply(tail).T @ w).ravel() + l2[h:]  # (k,) diagonal of D
    g_head, g_tail = grad[:h], grad[h:]
    x_head = _solve(a - (b / d) @ b.T, g_head - b @ (g_tail / d))
    return np.concatenate([x_head, (g_tail - b.T @ x_head) / d])


def _weighted_gram(X, w: Array) -> Array:
    """X^T diag(w) X as a dense (P, P) array, for a dense or sparse X."""
    if sparse.issparse(X):
        return np.asarray((X.T @ X.multiply(w[:, None])).todense())
    return X.T @ (X * w[:, None])


def _solve(hess: Array, grad: Array) -> Array:
    try:
        return linalg.solve(hess, grad, assume_a="pos")
    except (linalg.LinAlgError, ValueError):
        return linalg.lstsq(hess, grad)[0]


def _judged(j: Judgments) -> tuple[Array, Array, Array]:
    """Rows with a verdict: instruction (n,), length feature (n,), soft label (n,)."""
    feature = length_feature(j.length, j.baseline_length)  # sd over every answer, as AlpacaEval
    preference = normalize_preferences(j.preference)  # (N,), the legacy draw 0 -> 1.5
    keep = ~np.isnan(preference)
    label = preference[keep] - 1.0
    return np.asarray(j.instruction, dtype=np.int64)[keep], feature[keep], label


def instruction_difficulty(
    judgments: Sequence[Judgments],
    n_instructions: int,
    *,
    difficulty_l2: float = DIFFICULTY_L2,
    l2: float = COEF_L2,
) -> Array:
    """Difficulty gamma (I,) of each instruction, fitted jointly over all contestants given.

    ``sigmoid(theta_m + phi_m * tanh(delta / sd_m) + gamma_x)`` for every judged row; a larger
    gamma_x means contestants do better against the baseline on x. Instructions nobody was
    judged on get 0."""
    if difficulty_l2 <= 0:
        raise ValueError(f"difficulty_l2 must be positive, got {difficulty_l2}")
    m = len(judgments)
    if m == 0:
        return np.zeros(n_instructions)
    parts = [_judged(j) for j in judgments]
    model_idx = np.concatenate([np.full(p[0].size, k) for k, p in enumerate(parts)])  # (R,)
    instr = np.concatenate([p[0] for p in parts])  # (R,)
    feature = np.concatenate([p[1] for p in parts])  # (R,)
    label = np.concatenate([p[2] for p in parts])  # (R,)
    rows = np.arange(label.size)
    X = sparse.csr_matrix(
        (
            np.concatenate([np.ones(rows.size), feature, np.ones(rows.size)]),
            (np.tile(rows, 3), np.concatenate([model_idx, m + model_idx, 2 * m + instr])),
        ),
        shape=(rows.size, 2 * m + n_instructions),
    )  # (R, 2M + I): bias, length term, difficulty
    penalty = np.concatenate([np.full(2 * m, l2), np.full(n_instructions, difficulty_l2)])
    beta = fit_soft_logistic(X, label, penalty, diagonal_tail=n_instructions)
    return beta[2 * m :]


def fit_length_controlled(j: Judgments, difficulty: Array, *, l2: float = COEF_L2) -> LCFit:
    """One contestant's GLM given the instruction difficulty (I,), and its LC win rate."""
    instr, feature, label = _judged(j)
    nan = float("nan")
    if label.size < 3:
        return LCFit(j.model, nan, nan, nan, nan, nan, np.full((3, 3), nan))
    X = np.column_stack([np.ones(label.size), feature, difficulty[instr]])  # (n, 3)
    beta = fit_soft_logistic(X, label, np.full(3, l2))
    hess = soft_logistic_hessian(X, beta, np.full(3, l2))
    scores = X * (special.expit(X @ beta) - label)[:, None]  # (n, 3) per-instruction gradients
    bread = _solve(hess, np.eye(3))
    cov = bread @ (scores.T @ scores) @ bread  # (3, 3) sandwich
    gamma_all = difficulty[np.asarray(j.instruction, dtype=np.int64)]  # (N,) every answer
    p0 = special.expit(beta[0] + beta[2] * gamma_all)  # (N,) prediction at zero length gap
    slope = p0 * (1.0 - p0)
    grad = np.array([slope.mean(), 0.0, (slope * gamma_all).mean()])  # d LC / d beta
    return LCFit(
        model=j.model,
        length_controlled_winrate=float(p0.mean()) * 100,
        lc_standard_error=float(np.sqrt(max(grad @ cov @ grad, 0.0))) * 100,
        bias=float(beta[0]),
        length_coef=float(beta[1]),
        difficulty_coef=float(beta[2]),
        covariance=cov,
    )


def length_controlled_win_rates(
    judgments: Sequence[Judgments],
    n_instructions: int | None = None,
    *,
    difficulty_l2: float = DIFFICULTY_L2,
    l2: float = COEF_L2,
) -> tuple[list[LCFit], Array]:
    """LC win rates of every contestant (in the order given) and the difficulty (I,) used.

    ``n_instructions`` defaults to one more than the largest instruction index."""
    if n_instructions is None:
        n_instructions = 1 + max(
            (int(np.max(j.instruction, initial=-1)) for j in judgments), default=-1
        )
    difficulty = instruction_difficulty(
        judgments, n_instructions, difficulty_l2=difficulty_l2, l2=l2
    )
    return [fit_length_controlled(j, difficulty, l2=l2) for j in judgments], difficulty
