"""Style control: the Bradley-Terry fit with answer-style covariates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from arena.ratings.bradley_terry import (
    _compact,
    _laplacian,
    _rating_map,
    _resolve_anchor,
    _to_ratings,
    bradley_terry,
)
from arena.ratings.common import (
    AUTO_L2,
    NAT,
    Array,
    CountTable,
    _outcome_array,
    aggregate,
    encode_models,
)
from arena.ratings.intervals import (
    RatingCI,
    _bread_inverse,
    _empty_interval,
    _normal_interval,
    _percentile_interval,
)

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
