"""GRPO (group relative policy optimisation, DeepSeekMath 2402.03300) and RLVR.

One step: take `rollout_batch_size` prompts, sample `group_size` answers to each, reward them
(a verifier such as exact match or unit tests, or a reward model), and use each answer's reward
relative to its group (`(r - mean) / std`) as the advantage of all its tokens. No value model;
the KL to the frozen reference (`beta`, k3 estimator) is a loss term, not a reward term.
`ppo_epochs` > 1 reuses the rollouts with the clipped ratio to the rollout policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from training.core import rl
from training.core.common import (
    CancelFn,
    ProgressFn,
    TrainerHooks,
    TrainResult,
    autocast_context,
    masked_mean,
)
from training.core.ppo import RolloutConfig, RolloutRun, token_outputs
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


def grpo_step(run: RolloutRun, step: int) -> dict[str, float]:
    """Sample groups, compute group-relative advantages, then the clipped updates."""
    config: GRPOConfig = run.config  # type: ignore[assignment]
    g = config.group_size
    r = run.rollout(step, g)
    ids, mask, scores = r["input_ids"], r["mask"], r["scores"]
    advantages = rl.group_advantages(scores.view(-1, g), scale=config.scale_rewards).view(-1)
    old = run.score_tokens(run.policy.lm, ids, mask)["logp"]
    ref = run.score_tokens(run.ref, ids, mask)["logp"] if run.ref is not None else None
    sums: dict[str, float] = {}
    n_updates = 0
    for _ in range(config.ppo_epochs):
        for idx in torch.randperm(ids.size(0)).split(config.batch_size):
            with autocast_context(run.device, config.bf16_autocast):
                out = token_outputs(
                    run.policy.lm, ids[idx], mask[idx], config.temperature, entropy=True
                )
                loss, stats = rl.grpo_loss(
                    out["logp"],
                    old[idx],
                    ref[idx] if ref is not None else None,
                    advantages[idx],
                    mask[idx],
                    config.cliprange,
                    config.beta,
                    config.loss_type,
                )
            stats["entropy"] = masked_mean(out["entropy"], mask[idx])
            stats["grad_norm"] = torch.tensor(run.optimizer_step(loss))
            stats["loss"] = loss.detach()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n_updates += 1
    grouped = scores.view(-1, g)
    metrics = {k: v / n_updates for k, v in sums.items()}
    metrics.update(
        reward=scores.mean().item(),
        reward_std=grouped.std(dim=1).mean().item() if g > 1 else 0.0,
        frac_reward_zero_std=(grouped.std(dim=1) == 0).float().mean().item() if g > 1 else 1.0,
        completion_length=mask.sum(1).float().mean().item(),
    )
    return metrics


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
