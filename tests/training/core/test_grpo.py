"""GRPO runs on toy arithmetic ("1 + 2 =" -> "3") rewarded by exact match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.training.core.test_ppo import build_toy_model
from training.core.evaluation import GenerationSettings, generate
from training.core.grpo import GRPOConfig, train_grpo
from training.core.verifiers import exact_match

ROWS = [{"prompt": f"{a} + {b} =", "answer": str(a + b)} for a in range(3) for b in range(3)]


@pytest.fixture(scope="module")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_model(tmp_path_factory.mktemp("toy-llama"))


def grpo_config(**kwargs: Any) -> GRPOConfig:
    defaults: dict[str, Any] = {
        "learning_rate": 1e-2,
        "lr_scheduler": "constant",
        "rollout_batch_size": 9,
        "group_size": 8,
        "batch_size": 36,
        "ppo_epochs": 2,
        "max_new_tokens": 1,
        "beta": 0.04,
        "verifier": "exact_match",
        "seed": 0,
    }
    return GRPOConfig(**{**defaults, **kwargs})


def greedy_exact_match(model_dir: Path) -> float:
    from training.core.common import load_causal_lm, load_tokenizer

    model, tok = load_causal_lm(model_dir), load_tokenizer(model_dir)
    settings = GenerationSettings(max_new_tokens=1, do_sample=False, batch_size=16)
    answers = [a[0] for a in generate(model, tok, [r["prompt"] for r in ROWS], settings)]
    return sum(exact_match(answers, ROWS)) / len(ROWS)


def test_grpo_raises_the_exact_match_rate_on_toy_arithmetic(
    toy_model_dir: Path, tmp_path: Path
) -> None:
    seen: list[dict[str, float]] = []
    result = train_grpo(
        grpo_config(max_steps=20),
        ROWS,
        toy_model_dir,
        tmp_path / "run",
        on_progress=lambda s, n, m: seen.append(m),
    )
    assert result.status == "completed" and len(seen) == 20
    assert {"reward", "reward_std", "kl", "clip_fraction", "entropy"} <= seen[-1].keys()
    rewards = [m["reward"] for m in seen]
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.3, rewards
    assert greedy_exact_match(Path(result.model_dir)) > greedy_exact_match(toy_model_dir)
    assert not (tmp_path / "run" / "value_head.safetensors").exists()


def test_grpo_without_kl_needs_no_reference_and_can_be_cancelled(
    toy_model_dir: Path, tmp_path: Path
) -> None:
    calls: list[int] = []

    def cancel_at_step_three() -> bool:
        calls.append(1)
        return len(calls) == 3

    config = grpo_config(max_steps=4, beta=0.0, save_every=1)
    cut = train_grpo(config, ROWS, toy_model_dir, tmp_path, should_cancel=cancel_at_step_three)
    assert cut.status == "cancelled" and cut.step == 2 and cut.model_dir is None
    assert cut.history[-1]["kl"] == 0.0
    done = train_grpo(config, ROWS, toy_model_dir, tmp_path, resume_from=cut.checkpoint_dir)
    assert done.status == "completed" and done.step == 4
    assert [h["step"] for h in done.history] == [1, 2, 3, 4]


def test_grpo_rejects_groups_of_one(toy_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="group_size"):
        train_grpo(grpo_config(group_size=1), ROWS, toy_model_dir, tmp_path)
