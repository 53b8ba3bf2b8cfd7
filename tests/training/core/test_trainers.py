"""Whole training runs on the tiny model: results, saved folders, checkpoints, resume, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.training.core.conftest import make_pairs
from training.core.checkpoint import list_checkpoints
from training.core.config import LoraSettings
from training.core.dpo import DPOConfig, train_dpo
from training.core.reward import RewardConfig, score, train_reward
from training.core.sft import SFTConfig, train_sft

ROWS = make_pairs(48, seed=21)


def dpo_config(tmp_path: Path, **kwargs: Any) -> DPOConfig:
    defaults = {
        "batch_size": 8,
        "max_length": 64,
        "learning_rate": 1e-3,
        "seed": 5,
        "cache_dir": str(tmp_path / "cache"),
    }
    return DPOConfig(**{**defaults, **kwargs})


def weights(model_dir: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(model_dir) / "model.safetensors"))


def assert_same_weights(a: str | Path, b: str | Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def test_dpo_run_reports_progress_and_saves_a_loadable_model_with_a_card(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    seen: list[tuple[int, int, dict[str, float]]] = []
    phases: list[tuple[str, int, int]] = []
    result = train_dpo(
        dpo_config(tmp_path),
        ROWS,
        tiny_model_dir,
        tmp_path / "run",
        on_progress=lambda s, n, m: seen.append((s, n, m)),
        on_phase=lambda name, done, total: phases.append((name, done, total)),
    )
    assert result.status == "completed" and result.step == result.total_steps == 6
    # The reference pass reports its batches before the first step.
    total = phases[-1][2]
    assert total >= 1 and phases == [("reference pass", d, total) for d in range(1, total + 1)]
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "rewards/chosen", "rewards/margins", "rewards/accuracies"} <= seen[-1][2].keys()
    assert result.metrics["train_loss"] < 0.6931  # the policy moved towards the chosen answers
    model = AutoModelForCausalLM.from_pretrained(result.model_dir)
    assert AutoTokenizer.from_pretrained(result.model_dir).pad_token == "<pad>"
    assert not torch.equal(model.lm_head.weight, weights(tiny_model_dir)["lm_head.weight"])
    card = (Path(result.model_dir) / "README.md").read_text()
    assert result.data_hash in card and "learning_rate" in card and "train_loss" in card
    assert "beta | 0.1" in card


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    full = train_dpo(dpo_config(tmp_path, num_epochs=2), ROWS, tiny_model_dir, tmp_path / "full")
    calls = {"n": 0}

    def cancel_after_four_steps() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    cut = train_dpo(
        dpo_config(tmp_path, num_epochs=2),
        ROWS,
        tiny_model_dir,
        tmp_path / "cut",
        should_cancel=cancel_after_four_steps,
    )
    assert cut.status == "cancelled" and cut.step == 4 and cut.model_dir is None
    resumed = train_dpo(
        dpo_config(tmp_path, num_epochs=2),
        ROWS,
        tiny_model_dir,
        tmp_path / "cut",
        resume_from=cut.checkpoint_dir,
    )
    assert resumed.status == "completed" and resumed.step == full.step == 12
    assert_same_weights(full.model_dir, resumed.model_dir)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_periodic_checkpoints_resume_exactly_and_old_ones_are_pruned(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in ROWS]
    cfg = SFTConfig(
        batch_size=8,
        max_length=64,
        learning_rate=1e-3,
        save_every=2,
        keep_checkpoints=2,
        num_epochs=1,
    )
    full = train_sft(cfg, rows, tiny_model_dir, tmp_path / "full")
    kept = list_checkpoints(tmp_path / "full" / "checkpoints")
    assert [p.name for p in kept] == ["checkpoint-4", "checkpoint-6"]
    resumed = train_sft(cfg, rows, tiny_model_dir, tmp_path / "again", resume_from=kept[0])
    assert_same_weights(full.model_dir, resumed.model_dir)


def test_cancellation_stops_at_the_next_step_and_leaves_a_checkpoint(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    result = train_dpo(
        dpo_config(tmp_path), ROWS, tiny_model_dir, tmp_path / "run", should_cancel=lambda: True
    )
    assert result.status == "cancelled" and result.step == 0
    assert Path(result.checkpoint_dir, "trainer_state.json").exists()
    assert not (tmp_path / "run" / "model").exists()


def test_resume_refuses_a_checkpoint_of_other_data(tiny_model_dir: Path, tmp_path: Path) -> None:
    cut = train_dpo(
        dpo_config(tmp_path), ROWS, tiny_model_dir, tmp_path / "a", should_cancel=lambda: True
    )
    with pytest.raises(ValueError, match="different data"):
        train_dpo(
            dpo_config(tmp_path),
            ROWS[:-8],
            tiny_model_dir,
            tmp_path / "b",
            resume_from=cut.checkpoint_dir,
        )


def test_reference_log_probs_are_cached_and_reused(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.core.dpo as dpo

    first = train_dpo(dpo_config(tmp_path, max_steps=1), ROWS, tiny_model_dir, tmp_path / "a")
    assert len(list((tmp_path / "cache").glob("ref-logps-*.safetensors"))) == 1

    def no_second_pass(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the reference pass ran again")

    monkeypatch.setattr(dpo, "compute_reference_logps", no_second_pass)
    second = train_dpo(dpo_config(tmp_path, max_steps=1), ROWS, tiny_model_dir, tmp_path / "b")
    assert second.history[0]["loss"] == first.history[0]["loss"]


@pytest.mark.parametrize("loss_type", ["ipo", "hinge", "robust", "rdpo", "simpo", "orpo", "kto"])
def test_every_loss_type_trains(tiny_model_dir: Path, tmp_path: Path, loss_type: str) -> None:
    result = train_dpo(
        dpo_config(tmp_path, loss_type=loss_type, max_steps=3),
        ROWS,
        tiny_model_dir,
        tmp_path / loss_type,
    )
    assert result.status == "completed" and result.step == 3
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    if loss_type == "kto":
        assert "kl" in result.metrics


def test_lora_run_saves_a_merged_plain_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    cfg = dpo_config(tmp_path, max_steps=2, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    result = train_dpo(cfg, ROWS, tiny_model_dir, tmp_path / "lora")
    model = AutoModelForCausalLM.from_pretrained(result.model_dir)
    base = weights(tiny_model_dir)
    changed = model.model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(changed, base["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(model.model.embed_tokens.weight, base["model.embed_tokens.weight"])


def test_sft_on_conversations_learns_the_assistant_turns(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": r["prompt"]},
                {"role": "assistant", "content": "helpful kind clear"},
            ]
        }
        for r in ROWS
    ]
    result = train_sft(
        SFTConfig(batch_size=8, max_length=64, learning_rate=3e-3, num_epochs=2),
        rows,
        tiny_model_dir,
        tmp_path / "sft",
    )
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.75 * losses[0]


def test_reward_model_learns_the_preference_and_scores_pairs(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from training.core.common import load_reward_model, load_tokenizer

    rows = make_pairs(160, seed=22)
    cfg = RewardConfig(
        batch_size=16, max_length=64, learning_rate=3e-3, num_epochs=2, eval_fraction=0.2
    )
    result = train_reward(cfg, rows, tiny_model_dir, tmp_path / "rm")
    # 20% would be 32 pairs; the split holds out up to 200 while two thirds stay for training.
    assert 53 <= result.metrics["eval/pairs"] <= 60
    assert result.metrics["eval/accuracy"] >= 0.75
    assert result.metrics["eval/accuracy_low"] > 0.5  # the interval clears chance
    model = load_reward_model(result.model_dir)
    tokenizer = load_tokenizer(result.model_dir)
    good, bad = score(
        model, tokenizer, [("ba ka", " helpful kind correct"), ("ba ka", " rude lazy")]
    )
    assert good > bad
    assert score(model, tokenizer, ("ba ka", " helpful kind correct")) == pytest.approx(
        good, abs=1e-5
    )
    chat = score(model, tokenizer, ([{"role": "user", "content": "ba"}], "helpful"))
    assert isinstance(chat, float)


def test_gradient_accumulation_matches_one_larger_batch(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    fixed_order = {"shuffle": False, "group_by_length": False, "max_steps": 3}
    big = train_dpo(
        dpo_config(tmp_path, batch_size=8, **fixed_order), ROWS, tiny_model_dir, tmp_path / "big"
    )
    accumulated = train_dpo(
        dpo_config(tmp_path, batch_size=4, grad_accum_steps=2, **fixed_order),
        ROWS,
        tiny_model_dir,
        tmp_path / "accum",
    )
    for name, value in weights(big.model_dir).items():
        torch.testing.assert_close(weights(accumulated.model_dir)[name], value, atol=1e-5, rtol=0)


def test_sft_with_gradient_accumulation_matches_one_large_batch(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    # Short completions in the first micro-batch, long ones in the second: a mean of the two
    # micro-batches' token means would weigh a short answer's tokens several times more.
    rows = [
        {"prompt": r["prompt"], "completion": r["chosen"] if i < 4 else r["chosen"] * 4}
        for i, r in enumerate(ROWS[:8])
    ]

    def first_step(batch_size: int, accum: int, name: str) -> dict[str, float]:
        cfg = SFTConfig(
            batch_size=batch_size,
            grad_accum_steps=accum,
            max_length=128,
            learning_rate=1e-3,
            max_steps=1,
            shuffle=False,
            group_by_length=False,
        )
        return train_sft(cfg, rows, tiny_model_dir, tmp_path / name).history[0]

    one = first_step(8, 1, "one")
    accumulated = first_step(4, 2, "accumulated")
    assert accumulated["loss"] == pytest.approx(one["loss"], rel=1e-5)
    assert accumulated["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-4)
