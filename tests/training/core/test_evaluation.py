"""Reward-model judging: accuracy, win rate, best-of-n and the length correlation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training.core.conftest import make_pairs
from training.core.common import load_causal_lm, load_reward_model, load_tokenizer
from training.core.evaluation import (
    GenerationSettings,
    best_of_n,
    pearson,
    reward_accuracy,
    reward_length_correlation,
    win_rate,
)
from training.core.reward import RewardConfig, train_reward

SHORT = GenerationSettings(max_new_tokens=6, batch_size=4, seed=3)


@pytest.fixture(scope="module")
def judge(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    cfg = RewardConfig(
        batch_size=16, max_length=64, learning_rate=3e-3, num_epochs=2, eval_fraction=0.0
    )
    result = train_reward(
        cfg, make_pairs(160, seed=31), tiny_model_dir, tmp_path_factory.mktemp("judge")
    )
    return load_reward_model(result.model_dir), load_tokenizer(result.model_dir)


def test_reward_accuracy_counts_pairs_where_the_chosen_answer_scores_higher(judge: Any) -> None:
    model, tokenizer = judge
    out = reward_accuracy(model, tokenizer, make_pairs(40, seed=32))
    assert out["pairs"] == 40 and out["accuracy"] >= 0.75 and out["margin"] > 0
    flipped = [
        {"prompt": r["prompt"], "chosen": r["rejected"], "rejected": r["chosen"]}
        for r in make_pairs(40, seed=32)
    ]
    assert reward_accuracy(model, tokenizer, flipped)["accuracy"] == pytest.approx(
        1 - out["accuracy"]
    )


def test_a_policy_against_itself_ties_every_prompt(
    judge: Any, tiny_model_dir: Path, tokenizer: Any
) -> None:
    model, rm_tokenizer = judge
    policy = load_causal_lm(tiny_model_dir)
    prompts = [r["prompt"] for r in make_pairs(5, seed=33)]
    out = win_rate(policy, policy, tokenizer, model, rm_tokenizer, prompts, SHORT)
    assert (out["wins"], out["losses"], out["ties"], out["n"]) == (0, 0, 5, 5)
    assert out["win_rate"] == 0.5


def test_win_rate_counts_wins_losses_and_ties_over_conversations(
    judge: Any, tiny_model_dir: Path, policy_dir: Path, tokenizer: Any
) -> None:
    model, rm_tokenizer = judge
    prompts = [[{"role": "user", "content": r["prompt"]}] for r in make_pairs(4, seed=34)]
    out = win_rate(
        load_causal_lm(policy_dir),
        load_causal_lm(tiny_model_dir),
        tokenizer,
        model,
        rm_tokenizer,
        prompts,
        SHORT,
    )
    assert out["wins"] + out["losses"] + out["ties"] == 4
    assert 0.0 <= out["win_rate"] <= 1.0


def test_best_of_n_keeps_the_highest_scoring_sample(
    judge: Any, tiny_model_dir: Path, tokenizer: Any
) -> None:
    model, rm_tokenizer = judge
    prompts = [r["prompt"] for r in make_pairs(2, seed=35)]
    picks = best_of_n(
        load_causal_lm(tiny_model_dir), tokenizer, model, rm_tokenizer, prompts, n=3, settings=SHORT
    )
    assert len(picks) == 2
    for pick in picks:
        assert len(pick.candidates) == 3 and pick.best_score == max(pick.scores)
        assert pick.best == pick.candidates[pick.scores.index(pick.best_score)]


def test_pearson_of_literals() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert pearson(x, torch.ones(4)) == 0.0


def test_reward_length_correlation_reports_both_coefficients(judge: Any) -> None:
    model, tokenizer = judge
    pairs = [("ba", " " + " ".join(["helpful"] * k)) for k in range(1, 7)]
    out = reward_length_correlation(model, tokenizer, pairs)
    assert out["n"] == 6
    assert -1.0 <= out["pearson"] <= 1.0 and -1.0 <= out["spearman"] <= 1.0
