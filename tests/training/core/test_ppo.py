"""PPO runs on a toy task: reward for answers that contain a chosen word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from training.core.ppo import PPOConfig, train_ppo
from training.core.rollout import pack_rollouts

TOY_WORDS = [str(i) for i in range(10)] + ["+", "=", "the", "cat", "dog", "sun"]
ROWS = [{"prompt": f"{a} + {b} =", "answer": str(a + b)} for a in range(4) for b in range(4)]


def build_toy_model(folder: Path) -> Path:
    """A one-layer Llama over a ~50-token vocabulary (digits, +, =, a few words): small enough
    that a handful of RL steps visibly change what it samples."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.core.tiny import build_tokenizer

    tok = build_tokenizer(corpus_words=TOY_WORDS, vocab_size=128)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def toy_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_toy_model(tmp_path_factory.mktemp("toy-llama"))


def ppo_config(**kwargs: Any) -> PPOConfig:
    defaults: dict[str, Any] = {
        "learning_rate": 3e-3,
        "lr_scheduler": "constant",
        "rollout_batch_size": 16,
        "batch_size": 8,
        "ppo_epochs": 2,
        "max_new_tokens": 4,
        "kl_coef": 0.05,
        "verifier": "contains",
        "verifier_args": {"word": "cat"},
        "seed": 0,
    }
    return PPOConfig(**{**defaults, **kwargs})


def test_pack_rollouts_marks_the_positions_that_predict_answer_tokens() -> None:
    ids, mask = pack_rollouts([[5, 6], [7]], [[8, 3], [9]], pad_id=0)
    assert ids.tolist() == [[5, 6, 8, 3], [7, 9, 0, 0]]
    assert mask.tolist() == [[False, True, True], [True, False, False]]


def test_ppo_raises_the_reward_while_kl_stays_bounded(toy_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    seen: list[dict[str, float]] = []
    result = train_ppo(
        ppo_config(max_steps=20),
        ROWS,
        toy_model_dir,
        tmp_path / "run",
        on_progress=lambda s, n, m: seen.append(m),
    )
    assert result.status == "completed" and result.step == 20 and len(seen) == 20
    keys = {"reward", "kl", "entropy", "clip_fraction", "value_loss", "policy_loss", "kl_coef"}
    assert keys <= seen[-1].keys()
    rewards = [m["reward"] for m in seen]
    before, after = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert after > before + 0.4, rewards
    assert max(m["kl"] for m in seen) < 8.0  # nats per answer of 4 tokens
    model = AutoModelForCausalLM.from_pretrained(result.model_dir)
    base = load_file(str(toy_model_dir / "model.safetensors"))
    assert not torch.equal(model.lm_head.weight, base["lm_head.weight"])
    assert set(load_file(str(tmp_path / "run" / "value_head.safetensors"))) == {"weight", "bias"}
    assert "PPO" in (Path(result.model_dir) / "README.md").read_text()


def test_cancelled_ppo_run_resumes_to_the_same_weights(toy_model_dir: Path, tmp_path: Path) -> None:
    config = ppo_config(max_steps=4, save_every=2, kl_target=1.0, kl_horizon=100)
    full = train_ppo(config, ROWS, toy_model_dir, tmp_path / "full")
    calls = {"n": 0}

    def cancel_at_step_three() -> bool:
        calls["n"] += 1
        return calls["n"] == 3

    cut = train_ppo(
        config, ROWS, toy_model_dir, tmp_path / "cut", should_cancel=cancel_at_step_three
    )
    assert cut.status == "cancelled" and cut.step == 2 and cut.model_dir is None
    assert cut.checkpoint_dir is not None and cut.checkpoint_dir.endswith("checkpoint-2")
    done = train_ppo(config, ROWS, toy_model_dir, tmp_path / "cut", resume_from=cut.checkpoint_dir)
    assert done.status == "completed" and done.step == 4 and len(done.history) == 4
    # The adaptive controller moved the coefficient and carried it over the restart.
    assert done.history[-1]["kl_coef"] == pytest.approx(full.history[-1]["kl_coef"])
    assert full.history[-1]["kl_coef"] != 0.05
    a = load_file(str(Path(full.model_dir) / "model.safetensors"))
    b = load_file(str(Path(done.model_dir) / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name])


def test_ppo_takes_chat_rows_and_a_reward_model(toy_model_dir: Path, tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "user", "content": r["prompt"]}]} for r in ROWS[:4]]
    config = ppo_config(
        max_steps=1, rollout_batch_size=4, verifier=None, reward_model=str(toy_model_dir)
    )
    result = train_ppo(config, rows, toy_model_dir, tmp_path / "rm")
    assert result.status == "completed" and "reward" in result.metrics
