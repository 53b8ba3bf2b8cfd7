"""Matrices for the plots, and the pair-sampling rule."""

from __future__ import annotations

import numpy as np
from scipy import special

from arena.ratings.common import NAT, Array, CountTable

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
    overlap = 2.0 * special.ndtr(-gap / sd)  # the normal upper tail
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
