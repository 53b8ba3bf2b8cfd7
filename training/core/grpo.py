"""GRPO (group relative policy optimisation, DeepSeekMath 2402.03300) and RLVR.

One step: take `rollout_batch_size` prompts, sample `group_size` answers to each, reward them
(a verifier such as exact match or unit tests, or a reward model), and use each answer's reward
relative to its group (`(r - mean) / std`) as the advantage of all its tokens. No value model;
the KL to the frozen reference (`beta`, k3 estimator) is a loss term, not a reward term.
`ppo_epochs` > 1 reuses the rollouts with the clipped ratio to the rollout policy.

Under torchrun each rank samples whole groups (see `rl_loop.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from training.core import rl
from training.core.common import CancelFn, ProgressFn, TrainerHooks, TrainResult, masked_mean
from training.core.rl_loop import Batch, RolloutRun
from training.core.rollout import RolloutConfig, score_tokens
from training.core.verifiers import Row


@dataclass
class GRPOConfig(RolloutConfig):
    """GRPO settings (defaults after TRL's GRPOTrainer). `beta` 0 drops the reference model;
    `scale_rewards=False` only centres rewards (Dr. GRPO); `loss_type` "grpo" averages tokens
    per answer first, "dapo" over all tokens."""

    group_size: int = 8
    beta: float = 0.04
    scale_rewards: bool = True
    loss_type: str = "grpo"


def grpo_minibatch_loss(
    model: nn.Module, mb: Batch, config: GRPOConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO's clipped objective (+ k3 KL) on one mini-batch; `model` is the policy (or DDP)."""
    out = model(mb["input_ids"], mb["mask"], config.temperature)
    loss, stats = rl.grpo_loss(
        out["logp"],
        mb["logp"],
        mb.get("ref_logp"),
        mb["advantages"],
        mb["mask"],
        config.cliprange,
        config.beta,
        config.loss_type,
    )
    stats["entropy"] = masked_mean(out["entropy"], mb["mask"])
    return loss, stats


def grpo_step(run: RolloutRun, step: int) -> dict[str, float]:
    """Sample groups, compute group-relative advantages, then the clipped updates.

    A prompt's group is sampled on one rank, so its statistics need no communication."""
    config: GRPOConfig = run.config  # type: ignore[assignment]
    g = config.group_size
    r = run.rollout(step, g)
    ids, mask, scores = r["input_ids"], r["mask"], r["scores"]
    batch = {
        "input_ids": ids,
        "mask": mask,
        "logp": score_tokens(run.policy.lm, ids, mask, config)["logp"],
        "advantages": rl.group_advantages(scores.view(-1, g), scale=config.scale_rewards).view(-1),
    }
    if run.ref is not None:
        batch["ref_logp"] = score_tokens(run.ref, ids, mask, config)["logp"]
    metrics = run.update(batch, lambda model, mb: grpo_minibatch_loss(model, mb, config))
    grouped = scores.view(-1, g)
    metrics.update(
        reward=scores.mean().item(),
        reward_std=grouped.std(dim=1).mean().item(),
        frac_reward_zero_std=(grouped.std(dim=1) == 0).float().mean().item(),
        completion_length=mask.sum(1).float().mean().item(),
    )
    return run.mean_over_ranks(metrics)


def train_grpo(
    config: GRPOConfig,
    rows: Sequence[Row],
    base_model: str | Path,
    output_dir: str | Path,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    resume_from: str | Path | None = None,
) -> TrainResult:
    """Train a policy with GRPO on prompts (`prompt` or `messages` rows, with the columns the
    verifier reads: `answer` for exact match, `tests` for code)."""
    if config.group_size < 2:
        raise ValueError("GRPO needs group_size >= 2 (advantages are relative to the group)")
    if config.loss_type not in ("grpo", "dapo"):
        raise ValueError(f"unknown loss_type {config.loss_type!r}; 'grpo' or 'dapo'")
    hooks = TrainerHooks(on_progress, should_cancel)
    run = RolloutRun("grpo", config, rows, base_model, output_dir, hooks, False, config.beta > 0)
    if resume_from:
        run.resume(resume_from)
    return run.run(grpo_step, f"GRPO tuning of {Path(base_model).name}")
