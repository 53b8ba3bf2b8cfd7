"""Supervised fine-tuning on demonstrations: next-token loss on completion/assistant tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from torch import nn

from training.core.batching import collate_sequences
from training.core.common import (
    CancelFn,
    ProgressFn,
    TrainerHooks,
    TrainResult,
    hash_rows,
    load_causal_lm,
    load_tokenizer,
)
from training.core.config import TrainConfig, prepare_model
from training.core.data import Row, tokenize_sft
from training.core.loop import Batch, Task, begin_run, run_training
from training.core.losses import sequence_sft_loss
from training.core.scoring import CompletionScorer


@dataclass
class SFTConfig(TrainConfig):
    learning_rate: float = 2e-5


def sft_batch_loss(scorer: nn.Module, batch: Batch) -> tuple[Any, dict[str, Any]]:
    """Token-mean NLL over the batch's loss-masked tokens (as TRL's SFTTrainer)."""
    out = scorer(batch["input_ids"], batch["loss_mask"])
    return sequence_sft_loss(out["logps"], out["counts"])


def sft_loss_weight(batch: Batch) -> float:
    """The tokens `sft_batch_loss` averages over: scored positions, token t+1 predicted at t."""
    return float(batch["loss_mask"][:, 1:].sum())


def train_sft(
    config: SFTConfig,
    rows: Sequence[Row],
    base_model: str | Path,
    output_dir: str | Path,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    resume_from: str | Path | None = None,
) -> TrainResult:
    """Fine-tune `base_model` on `messages` or `prompt`/`completion` rows."""
    ctx = begin_run(config)
    tokenizer = load_tokenizer(base_model)
    examples = tokenize_sft(tokenizer, rows, config.max_length)
    model = load_causal_lm(base_model, config.dtype, ctx.device)
    model = prepare_model(model, config)
    task = Task(
        kind="sft",
        examples=examples,
        lengths=[e.length for e in examples],
        collate=partial(collate_sequences, pad_id=tokenizer.pad_token_id),
        compute_loss=sft_batch_loss,
        loss_weight=sft_loss_weight,
        scorer=CompletionScorer(model),
        card={"title": f"SFT of {Path(base_model).name}", "base_model": str(base_model)},
    )
    return run_training(
        config,
        task,
        model,
        tokenizer,
        output_dir,
        TrainerHooks(on_progress, should_cancel),
        ctx,
        hash_rows(rows),
        resume_from,
    )
