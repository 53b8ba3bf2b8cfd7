"""The evaluation metrics: AlpacaEval 2.0's raw win rates reproduced on its published rows, the
length-controlled GLM on synthetic judges with known truth and on real annotations, and the
judge diagnostics."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse, special

from evaluation.alpaca_formats import annotations_to_judgments, read_annotations
from evaluation.metrics import (
    Judgments,
    fit_soft_logistic,
    judge_agreement,
    leaderboard,
    length_controlled_win_rates,
    length_feature,
    normalize_preferences,
    position_bias,
    rank_correlation,
    verdicts,
    win_rate,
    win_rate_interval,
)
from tests.support.shared_data import ALPACA_EVAL

MODELS = ("alpaca-7b", "claude-2.1", "gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106_verbose")
needs_data = pytest.mark.skipif(
    not (ALPACA_EVAL / "published_leaderboard_rows.csv").exists(),
    reason="shared AlpacaEval data absent",
)

# --------------------------------------------------------------------------- raw win rates


def test_win_rate_counts_draws_as_half_and_skips_missing_verdicts():
    record = win_rate([2.0, 1.0, 1.5, 0.0, None, 1.75, float("nan")], lengths=[3, 4, 4, 4, 5, 6, 7])
    assert record.n_total == 5
    assert (record.n_wins, record.n_wins_base, record.n_draws) == (2, 1, 2)
    assert record.win_rate == pytest.approx(np.mean([1.0, 0.0, 0.5, 0.5, 0.75]) * 100)
    assert record.discrete_win_rate == pytest.approx((2 + 0.5 * 2) / 5 * 100)
    assert record.standard_error == pytest.approx(
        np.std([1.0, 0.0, 0.5, 0.5, 0.75], ddof=1) / math.sqrt(5) * 100
    )
    assert record.avg_length == 4  # int(33 / 7), truncated like AlpacaEval


def test_normalize_preferences_rejects_values_outside_one_to_two_naming_the_position():
    with pytest.raises(ValueError, match="position 2 is 2.5"):
        normalize_preferences([1.0, 2.0, 2.5])
    assert normalize_preferences([0, None])[0] == 1.5


def test_win_rate_interval_is_significant_only_when_it_excludes_fifty():
    strong = win_rate_interval([2.0] * 80 + [1.0] * 20)
    assert strong.significant and strong.lower > 50
    even = win_rate_interval([2.0] * 52 + [1.0] * 48)
    assert not even.significant and even.lower < 50 < even.upper
    assert strong.upper - strong.lower == pytest.approx(
        2 * 1.959964 * win_rate([2.0] * 80 + [1.0] * 20).standard_error, rel=1e-5
    )


def published_rows() -> dict[str, dict[str, str]]:
    with (ALPACA_EVAL / "published_leaderboard_rows.csv").open(newline="") as handle:
        return {row[""]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def real():
    annotations = []
    for model in MODELS:
        annotations.extend(read_annotations(ALPACA_EVAL / f"{model}.annotations.json.gz"))
    return annotations_to_judgments(annotations)


@needs_data
@pytest.mark.parametrize("model", MODELS)
def test_raw_metrics_equal_the_published_alpaca_eval_rows(model, real):
    judgments, baseline, _ = real
    assert baseline == "gpt4_1106_preview"
    j = next(j for j in judgments if j.model == model)
    record = win_rate(j.preference, j.length)
    published = published_rows()[model]
    for name in ("n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"):
        assert getattr(record, name) == int(published[name]), name
    for name in ("win_rate", "standard_error", "discrete_win_rate"):
        assert getattr(record, name) == pytest.approx(float(published[name]), rel=1e-12), name


@needs_data
def test_length_controlled_win_rates_rank_and_correct_like_the_published_leaderboard(real):
    judgments, baseline, instructions = real
    rows = {r.model: r for r in leaderboard(judgments, baseline=baseline)}
    published = published_rows()
    ours = [rows[m].length_controlled_winrate for m in MODELS]
    theirs = [float(published[m]["length_controlled_winrate"]) for m in MODELS]
    for m in MODELS:
        print(
            f"{m}: LC {rows[m].length_controlled_winrate:.2f} +- {rows[m].lc_standard_error:.2f}"
            f" (published {float(published[m]['length_controlled_winrate']):.2f})"
        )
    assert rank_correlation(ours, theirs) == 1.0
    gain = {m: rows[m].length_controlled_winrate - rows[m].win_rate for m in MODELS}
    # The baseline writes long answers: controlling for length raises every shorter model...
    assert all(g > 0 for g in gain.values())
    # ...but less for the model asked to be verbose than for the same model left alone.
    assert gain["gpt-3.5-turbo-1106_verbose"] < gain["gpt-3.5-turbo-1106"]
    assert all(0 < rows[m].lc_standard_error < 5 for m in MODELS)


# --------------------------------------------------------------------------- the GLM, synthetic


def synthetic(models: dict[str, tuple[float, float, float]], n: int = 805, seed: int = 0):
    """Judgments drawn from the GLM itself: per model (bias, length coefficient, verbosity as
    a log length ratio to the baseline). Preferences are the judge's exact probabilities.
    Returns the judgments, the true difficulty and the true LC per model."""
    rng = np.random.default_rng(seed)
    gamma = rng.normal(0.0, 1.0, n)  # (I,)
    base_len = np.exp(rng.normal(7.0, 0.5, n))  # (I,)
    out, truth = [], {}
    for name, (bias, slope, verbosity) in models.items():
        length = base_len * np.exp(verbosity + rng.normal(0.0, 0.4, n))  # (I,)
        f = length_feature(length, base_len)
        p = special.expit(bias + slope * f + gamma)
        out.append(Judgments(name, np.arange(n), 1.0 + p, length, base_len))
        truth[name] = float(special.expit(bias + gamma).mean() * 100)
    return out, gamma, truth


SYNTHETIC = {
    "pure-length": (0.0, 2.0, 0.8),
    "better": (1.0, 0.0, 0.0),
    "worse-short": (-1.5, 1.0, -0.7),
    "mixed": (0.5, 1.5, 0.4),
    "weak": (-0.5, 0.5, 0.1),
    "terse": (0.2, 1.0, -0.5),
}


def test_a_pure_length_bias_gets_a_length_controlled_win_rate_near_fifty():
    judgments, _, truth = synthetic(SYNTHETIC)
    fits, _ = length_controlled_win_rates(judgments)
    fit = fits[0]
    raw = win_rate(judgments[0].preference).win_rate
    assert raw > 60  # the judge rewards its long answers
    assert fit.length_controlled_winrate == pytest.approx(truth["pure-length"], abs=2.0)
    assert abs(fit.length_controlled_winrate - 50.0) < 3.0
    assert fit.length_coef > 1.0


def test_a_real_advantage_survives_length_control():
    judgments, _, truth = synthetic(SYNTHETIC)
    fits, _ = length_controlled_win_rates(judgments)
    better = fits[1]
    assert truth["better"] > 65
    assert better.length_controlled_winrate == pytest.approx(truth["better"], abs=2.0)
    assert abs(better.length_coef) < 0.3
    for fit in fits:
        assert fit.length_controlled_winrate == pytest.approx(truth[fit.model], abs=2.5)


def test_instruction_difficulty_is_recovered_from_the_models_jointly():
    judgments, gamma, _ = synthetic(SYNTHETIC)
    _, difficulty = length_controlled_win_rates(judgments)
    assert difficulty.shape == gamma.shape
    assert np.corrcoef(difficulty, gamma)[0, 1] > 0.95
    assert abs(difficulty.mean()) < 0.1  # centred by its prior; the biases carry the level


def test_the_schur_complement_newton_step_finds_the_dense_solution():
    rng = np.random.default_rng(5)
    rows, head, tail = 300, 4, 40
    dense = np.zeros((rows, head + tail))
    dense[:, :head] = rng.normal(size=(rows, head))
    dense[np.arange(rows), head + rng.integers(0, tail, rows)] = 1.0  # one-hot tail
    y = rng.random(rows)
    l2 = np.concatenate([np.full(head, 1e-3), np.full(tail, 0.5)])
    plain = fit_soft_logistic(dense, y, l2)
    schur = fit_soft_logistic(sparse.csr_matrix(dense), y, l2, diagonal_tail=tail)
    np.testing.assert_allclose(schur, plain, atol=1e-8)
    grad = dense.T @ (special.expit(dense @ plain) - y) + l2 * plain
    assert np.abs(grad).max() < 1e-8


def test_lc_standard_error_shrinks_with_more_instructions():
    small, _, _ = synthetic(SYNTHETIC, n=200, seed=1)
    large, _, _ = synthetic(SYNTHETIC, n=1600, seed=1)
    se_small = length_controlled_win_rates(small)[0][1].lc_standard_error
    se_large = length_controlled_win_rates(large)[0][1].lc_standard_error
    assert 0 < se_large < se_small


def test_leaderboard_sorts_by_length_controlled_win_rate_and_scores_the_baseline_fifty():
    judgments, _, _ = synthetic(SYNTHETIC, n=300)
    itself = Judgments("base", np.arange(300), np.full(300, 1.5), np.ones(300), np.ones(300))
    rows = leaderboard([*judgments, itself], baseline="base")
    lcs = [r.length_controlled_winrate for r in rows]
    assert lcs == sorted(lcs, reverse=True)
    base = next(r for r in rows if r.model == "base")
    assert (base.length_controlled_winrate, base.n_draws, base.win_rate) == (50.0, 300, 50.0)


def test_leaderboard_of_few_verdicts_leaves_lc_unknown_and_ranks_it_last():
    rng = np.random.default_rng(3)
    few = Judgments("few", np.arange(2), np.array([2.0, 1.0]), np.ones(2), np.ones(2))
    many = Judgments("many", np.arange(50), 1 + rng.random(50), rng.random(50), rng.random(50))
    rows = leaderboard([few, many])
    assert [r.model for r in rows] == ["many", "few"]
    assert math.isnan(rows[1].length_controlled_winrate) and rows[1].win_rate == 50.0
    only_baseline = Judgments("base", np.arange(3), np.full(3, 1.5), np.ones(3), np.ones(3))
    assert leaderboard([only_baseline], baseline="base")[0].length_controlled_winrate == 50.0


def test_equal_lengths_leave_the_length_term_at_zero():
    assert np.all(length_feature(np.full(4, 10.0), np.full(4, 10.0)) == 0.0)


# --------------------------------------------------------------------------- judge diagnostics


def test_verdicts_read_weighted_preferences_by_the_side_they_lean_to():
    v = verdicts([1.2, 1.5, 1.9, 0, None])
    assert v[:4].tolist() == [1.0, 1.5, 2.0, 1.5] and math.isnan(v[4])


def test_position_bias_counts_verdicts_that_follow_the_order():
    # Pairs (A, B) then (B, A); a consistent judge gives mirrored verdicts.
    first = [1.0, 2.0, 1.0, 1.0, 1.5, None]
    swapped = [2.0, 1.0, 1.0, 1.5, 1.5, 2.0]
    bias = position_bias(first, swapped)
    assert bias.n == 5
    assert bias.rate == pytest.approx(2 / 5)  # pair 3 prefers the first shown, pair 4 via a draw
    assert bias.first_share == pytest.approx(1 / 2) and bias.second_share == 0.0


def test_judge_agreement_and_kappa():
    a = [1.0, 1.0, 2.0, 2.0, 1.5, 1.2]
    b = [1.0, 2.0, 2.0, 2.0, 1.5, 1.4]
    result = judge_agreement(a, b)
    assert result.n == 6 and result.agreement == pytest.approx(5 / 6)
    chance = (3 / 6) * (2 / 6) + (1 / 6) * (1 / 6) + (2 / 6) * (3 / 6)
    assert result.kappa == pytest.approx((5 / 6 - chance) / (1 - chance))
    with pytest.raises(ValueError):
        judge_agreement([1.0], [1.0, 2.0])


def test_rank_correlation_is_spearman():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert rank_correlation([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def test_the_metrics_and_file_formats_never_import_django():
    code = (
        "import sys, evaluation.metrics, evaluation.alpaca_formats; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
