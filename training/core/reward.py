"""Reward models: a base LM with a scalar head, trained with the Bradley-Terry loss on pairs.

`score` is what the platform uses as a judge: one number per (prompt, answer).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.core.batching import (
    collate_pairs_packed,
    collate_reward_pairs,
    pad_right,
    pair_lengths,
)
from training.core.common import (
    CancelFn,
    ProgressFn,
    TrainerHooks,
    TrainResult,
    hash_rows,
    load_reward_model,
    load_tokenizer,
)
from training.core.config import TrainConfig, prepare_model
from training.core.data import PairExample, Row, tokenize_reward_pairs
from training.core.loop import Batch, Task, begin_run, run_training
from training.core.losses import bradley_terry_loss
from training.core.scoring import RewardScorer, supports_packing

Answer = str | list[dict[str, str]]
Prompt = str | list[dict[str, str]]


@dataclass
class RewardConfig(TrainConfig):
    learning_rate: float = 1e-4
    eval_fraction: float = 0.1
    center_rewards_coefficient: float | None = None
    eval_batch_size: int = 32
    pack_pairs: bool = True


def reward_batch_loss(
    scorer: nn.Module, batch: Batch, center: float | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    rewards = scorer(**batch)  # (2B,): chosen then rejected
    chosen, rejected = rewards.chunk(2)
    return bradley_terry_loss(chosen, rejected, batch["margin"], center)


def split_holdout(rows: Sequence[Row], fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """A seeded held-out split; at least one row is held out when `fraction` > 0."""
    rows = list(rows)
    if fraction <= 0 or len(rows) < 2:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(round(len(rows) * fraction)))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


@torch.no_grad()
def pair_rewards(
    scorer: nn.Module, examples: Sequence[PairExample], pad_id: int, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of the chosen and rejected sides of tokenised pairs.  # -> (N,), (N,)"""
    device = next(scorer.parameters()).device
    chosen, rejected = [], []
    for i in range(0, len(examples), batch_size):
        batch = collate_reward_pairs(examples[i : i + batch_size], pad_id)
        r = scorer(**{k: v.to(device) for k, v in batch.items()}).float().cpu()
        c, j = r.chunk(2)
        chosen.append(c)
        rejected.append(j)
    if not chosen:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(chosen), torch.cat(rejected)


def heldout_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    if chosen.numel() == 0:
        return {}
    diff = chosen - rejected
    return {
        "eval/accuracy": float((diff > 0).float().mean()),
        "eval/margin": float(diff.mean()),
        "eval/loss": float(-torch.nn.functional.logsigmoid(diff).mean()),
        "eval/pairs": float(chosen.numel()),
    }


def _reward_task(
    config: RewardConfig,
    model: nn.Module,
    base_model: str | Path,
    examples: list[PairExample],
    eval_examples: list[PairExample],
    pad: int,
) -> Task:
    packed = config.pack_pairs and supports_packing(model)
    collate = collate_pairs_packed if packed else collate_reward_pairs

    def evaluate(wrapped: nn.Module) -> dict[str, float]:
        return heldout_metrics(*pair_rewards(wrapped, eval_examples, pad, config.eval_batch_size))

    return Task(
        kind="reward",
        examples=examples,
        lengths=pair_lengths(examples, packed),
        collate=partial(collate, pad_id=pad),
        compute_loss=partial(reward_batch_loss, center=config.center_rewards_coefficient),
        scorer=RewardScorer(model),
        evaluate=evaluate,
        card={"title": f"Reward model from {Path(base_model).name}", "base_model": str(base_model)},
    )


def train_reward(
    config: RewardConfig,
    rows: Sequence[Row],
    base_model: str | Path,
    output_dir: str | Path,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    resume_from: str | Path | None = None,
) -> TrainResult:
    """Train a reward model on preference pairs; accuracy and margin on a held-out split."""
    ctx = begin_run(config)
    tokenizer = load_tokenizer(base_model)
    pad = tokenizer.pad_token_id
    train_rows, eval_rows = split_holdout(rows, config.eval_fraction, config.seed)
    examples = tokenize_reward_pairs(tokenizer, train_rows, config.max_length)
    eval_examples = tokenize_reward_pairs(tokenizer, eval_rows, config.max_length)
    model = load_reward_model(base_model, config.dtype, ctx.device, pad_token_id=pad)
    model = prepare_model(model, config, task_type="SEQ_CLS")
    task = _reward_task(config, model, base_model, examples, eval_examples, pad)
    hooks = TrainerHooks(on_progress, should_cancel)
    return run_training(
        config, task, model, tokenizer, output_dir, hooks, ctx, hash_rows(rows), resume_from
    )


def _sequence_ids(tokenizer: Any, prompt: Prompt, answer: Answer) -> list[int]:
    if isinstance(prompt, list) or isinstance(answer, list):
        prompt = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        answer = answer if isinstance(answer, list) else [{"role": "assistant", "content": answer}]
        text = tokenizer.apply_chat_template(prompt + answer, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token or ""
    return tokenizer(prompt + (answer if answer.endswith(eos) else answer + eos))["input_ids"]


@torch.no_grad()
def score(
    model: nn.Module,
    tokenizer: Any,
    pairs: Sequence[tuple[Prompt, Answer]] | tuple[Prompt, Answer],
    batch_size: int = 32,
    max_length: int | None = 2048,
) -> list[float] | float:
    """Reward of one (prompt, answer) pair, or of each of many; text or chat messages.

    Sequences are tokenised exactly as in training (chat template for messages, EOS appended
    to text answers), batched by length and scored at their last token.
    """
    single = isinstance(pairs, tuple)
    items = [pairs] if single else list(pairs)
    ids = [_sequence_ids(tokenizer, p, a)[:max_length] for p, a in items]
    scorer = model if isinstance(model, RewardScorer) else RewardScorer(model)
    was_training = scorer.training
    scorer.eval()
    device = next(scorer.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = [0.0] * len(ids)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        input_ids = pad_right([ids[i] for i in chunk], tokenizer.pad_token_id).to(device)
        lengths = torch.tensor([len(ids[i]) for i in chunk], device=device)
        for i, r in zip(chunk, scorer(input_ids, lengths).tolist(), strict=True):
            out[i] = r
    scorer.train(was_training)
    return out[0] if single else out
