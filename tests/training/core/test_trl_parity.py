"""Our losses and log-probs equal TRL's (trl 1.16) for the same model, batch and settings.

Each test builds TRL's own trainer (bf16 and gradient checkpointing off), lets it tokenise and
collate one batch, and compares its `compute_loss` (and per-sequence log-probs where TRL exposes
them) with ours on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.training.core.conftest import make_pairs, to_conversational
from training.core import losses as L
from training.core.batching import (
    collate_pairs,
    collate_pairs_packed,
    collate_sequences,
    collate_unpaired,
)
from training.core.data import (
    tokenize_pairs,
    tokenize_reward_pairs,
    tokenize_sft,
    tokenize_unpaired,
    unpair_rows,
)
from training.core.dpo import dpo_batch_loss, kto_batch_loss
from training.core.reward import reward_batch_loss
from training.core.scoring import CompletionScorer, RewardScorer
from training.core.sft import sft_batch_loss

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")
TOL = 1e-4
# TRL's configs still pass transformers' renamed checkpointing options.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
BATCH = 4


def trl_args(cls: type, tmp_path: Path, **kwargs: Any) -> Any:
    return cls(
        output_dir=str(tmp_path),
        per_device_train_batch_size=BATCH,
        bf16=False,
        gradient_checkpointing=False,
        max_length=128,
        report_to=[],
        use_cpu=True,
        **kwargs,
    )


def first_batch(trainer: Any) -> dict[str, torch.Tensor]:
    trainer.model.train()
    return trainer.data_collator([trainer.train_dataset[i] for i in range(BATCH)])


def lm(path: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path)


@pytest.fixture(scope="module")
def model_dirs(tiny_model_dir: Path, policy_dir: Path) -> dict[str, Path]:
    return {"policy": policy_dir, "ref": tiny_model_dir}


@pytest.fixture(scope="module")
def models(model_dirs: dict[str, Path]) -> dict[str, Any]:
    """Our side's models. Each TRL trainer gets copies of its own (`lm` again): building one
    patches its model's forward for that trainer's outputs, which must not leak into another
    test's trainer, whatever the order."""
    return {name: lm(path) for name, path in model_dirs.items()}


@pytest.fixture(scope="module")
def dpo_trainer(model_dirs: dict[str, Path], tokenizer: Any, tmp_path_factory: Any) -> Any:
    rows = make_pairs(BATCH, seed=11)
    trainer = trl.DPOTrainer(
        model=lm(model_dirs["policy"]),
        ref_model=lm(model_dirs["ref"]),
        args=trl_args(trl.DPOConfig, tmp_path_factory.mktemp("dpo")),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    return trainer, rows


def our_ref(models: dict[str, Any], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        logps = CompletionScorer(models["ref"])(**batch)["logps"]
    return torch.stack(logps.chunk(2), dim=1)  # (B, 2)


@pytest.mark.parametrize("collate", [collate_pairs, collate_pairs_packed], ids=["plain", "packed"])
def test_policy_log_probs_equal_trl(
    dpo_trainer: Any, models: dict[str, Any], tokenizer: Any, collate: Any
) -> None:
    trainer, rows = dpo_trainer
    theirs_c, theirs_r = trainer.compute_ref_log_probs(trainer.model, first_batch(trainer))
    batch = collate(tokenize_pairs(tokenizer, rows, 128), tokenizer.pad_token_id)
    with torch.no_grad():
        ours = CompletionScorer(models["policy"])(**batch)["logps"]
    torch.testing.assert_close(ours, torch.cat([theirs_c, theirs_r]), atol=TOL, rtol=0)


@pytest.mark.parametrize(
    ("loss_type", "extra"),
    [
        ("sigmoid", {}),
        ("ipo", {}),
        ("hinge", {}),
        ("robust", {"label_smoothing": 0.1}),
    ],
)
def test_dpo_family_losses_equal_trl(
    dpo_trainer: Any,
    models: dict[str, Any],
    tokenizer: Any,
    loss_type: str,
    extra: dict[str, float],
) -> None:
    trainer, rows = dpo_trainer
    trainer.loss_types, trainer.label_smoothing = [loss_type], extra.get("label_smoothing", 0.0)
    theirs = trainer.compute_loss(trainer.model, first_batch(trainer))
    batch = collate_pairs_packed(tokenize_pairs(tokenizer, rows, 128), tokenizer.pad_token_id)
    batch["ref"] = our_ref(models, batch)
    ours, stats = dpo_batch_loss(
        CompletionScorer(models["policy"]), batch, loss_type, {"beta": 0.1, **extra}
    )
    assert abs(ours.item() - theirs.item()) < TOL
    assert (
        abs(stats["rewards/chosen"].item() - trainer._metrics["train"]["rewards/chosen"][-1]) < TOL
    )
    assert abs(ours.item() - L.dpo_loss(*[torch.zeros(1)] * 4)[0].item()) > 1e-3  # not trivial


def test_conversational_dpo_loss_equals_trl(
    models: dict[str, Any], model_dirs: dict[str, Path], tokenizer: Any, tmp_path: Path
) -> None:
    rows = to_conversational(make_pairs(BATCH, seed=12))
    trainer = trl.DPOTrainer(
        model=lm(model_dirs["policy"]),
        ref_model=lm(model_dirs["ref"]),
        args=trl_args(trl.DPOConfig, tmp_path),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    theirs = trainer.compute_loss(trainer.model, first_batch(trainer))
    batch = collate_pairs_packed(tokenize_pairs(tokenizer, rows, 128), tokenizer.pad_token_id)
    batch["ref"] = our_ref(models, batch)
    ours, _ = dpo_batch_loss(CompletionScorer(models["policy"]), batch, "sigmoid", {"beta": 0.1})
    assert abs(ours.item() - theirs.item()) < TOL


def test_kto_loss_and_kl_estimate_equal_trl(
    models: dict[str, Any], model_dirs: dict[str, Path], tokenizer: Any, tmp_path: Path
) -> None:
    # The untouched model as policy against the perturbed one as reference gives a positive KL.
    policy, ref = models["ref"], models["policy"]
    rows = unpair_rows(make_pairs(3, seed=13))[:BATCH]
    trainer = trl.KTOTrainer(
        model=lm(model_dirs["ref"]),
        ref_model=lm(model_dirs["policy"]),
        args=trl_args(trl.KTOConfig, tmp_path, train_sampling_strategy="sequential"),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    theirs = trainer.compute_loss(trainer.model, first_batch(trainer))
    batch = collate_unpaired(tokenize_unpaired(tokenizer, rows, 128), tokenizer.pad_token_id)
    with torch.no_grad():
        ref_logps = CompletionScorer(ref)(batch["input_ids"], batch["completion_mask"])["logps"]
    batch["ref"] = torch.stack(ref_logps.chunk(2), dim=1)
    params = {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0}
    ours, stats = kto_batch_loss(CompletionScorer(policy), batch, params)
    assert abs(ours.item() - theirs.item()) < TOL
    assert stats["kl"].item() > 0
    assert abs(stats["kl"].item() - trainer._metrics["train"]["kl"][-1]) < TOL


@pytest.mark.parametrize("conversational", [False, True], ids=["prompt-completion", "messages"])
def test_sft_loss_equals_trl(
    models: dict[str, Any],
    model_dirs: dict[str, Path],
    tokenizer: Any,
    tmp_path: Path,
    conversational: bool,
) -> None:
    pairs = make_pairs(BATCH, seed=14)
    if conversational:
        rows = [
            {
                "messages": [
                    {"role": "user", "content": r["prompt"]},
                    {"role": "assistant", "content": r["chosen"].strip()},
                    {"role": "user", "content": r["prompt"]},
                    {"role": "assistant", "content": r["rejected"].strip()},
                ]
            }
            for r in pairs
        ]
    else:
        rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in pairs]
    args = trl_args(trl.SFTConfig, tmp_path, assistant_only_loss=conversational)
    trainer = trl.SFTTrainer(
        model=lm(model_dirs["policy"]),
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    theirs = trainer.compute_loss(trainer.model, first_batch(trainer))
    batch = collate_sequences(tokenize_sft(tokenizer, rows, 128), tokenizer.pad_token_id)
    ours, _ = sft_batch_loss(CompletionScorer(models["policy"]), batch)
    assert abs(ours.item() - theirs.item()) < TOL


def test_reward_loss_and_rewards_equal_trl(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    from training.core.common import load_reward_model

    model = load_reward_model(tiny_model_dir, pad_token_id=tokenizer.pad_token_id)
    rows = make_pairs(BATCH, seed=15)
    trainer = trl.RewardTrainer(
        model=model,
        args=trl_args(trl.RewardConfig, tmp_path),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    theirs, outputs = trainer.compute_loss(trainer.model, first_batch(trainer), return_outputs=True)
    batch = collate_pairs_packed(
        tokenize_reward_pairs(tokenizer, rows, 128), tokenizer.pad_token_id
    )
    scorer = RewardScorer(model)
    ours, _ = reward_batch_loss(scorer, batch)
    assert abs(ours.item() - theirs.item()) < TOL
    with torch.no_grad():
        torch.testing.assert_close(scorer(**batch), outputs.logits.squeeze(-1), atol=TOL, rtol=0)
