"""Reward models: a base LM with a scalar head, trained with the Bradley-Terry loss on pairs.

`score` is what the platform uses as a judge: one number per (prompt, answer).
"""

from __future__ import annotations

import json
import math
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
    # The held-out split: this share of the prompts, but at least `eval_min_pairs` pairs while
    # that leaves two thirds of the data to train on. An accuracy on a handful of pairs says
    # nothing (5 pairs give a 95% interval about 0.7 wide).
    eval_fraction: float = 0.1
    eval_min_pairs: int = 200
    center_rewards_coefficient: float | None = None
    eval_batch_size: int = 32
    pack_pairs: bool = True


def reward_batch_loss(
    scorer: nn.Module, batch: Batch, center: float | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    rewards = scorer(**batch)  # (2B,): chosen then rejected
    chosen, rejected = rewards.chunk(2)
    return bradley_terry_loss(chosen, rejected, batch["margin"], center)


def _prompt_key(row: Row) -> str:
    prompt = row.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def split_holdout(
    rows: Sequence[Row], fraction: float, seed: int, min_pairs: int = 0
) -> tuple[list[Row], list[Row]]:
    """A seeded held-out split by prompt: every pair of a prompt falls on the same side, so
    the held-out accuracy is measured on prompts the model never trained on. Holds out
    `fraction` of the pairs, or `min_pairs` when that is more and leaves two thirds to train
    on; at least one prompt when `fraction` > 0."""
    rows = list(rows)
    if fraction <= 0 or len(rows) < 2:
        return rows, []
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(_prompt_key(row), []).append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    wanted = max(math.ceil(len(rows) * fraction), min(min_pairs, len(rows) // 3), 1)
    held: set[int] = set()
    for key in keys[:-1]:  # never hold out every prompt
        if len(held) >= wanted:
            break
        held.update(groups[key])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound near 0 and 1 and for small n)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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
    correct = float((diff > 0).float().sum())
    low, high = wilson_interval(correct, diff.numel())
    return {
        "eval/accuracy": correct / diff.numel(),
        "eval/accuracy_low": low,
        "eval/accuracy_high": high,
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
    train_rows, eval_rows = split_holdout(
        rows, config.eval_fraction, config.seed, config.eval_min_pairs
    )
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
