"""PPO for language models (RLHF as in InstructGPT).

One step: take `rollout_batch_size` prompts, sample one answer each from the policy, score the
answers (reward model or verifier), compute the per-token KL penalty to the frozen reference,
GAE advantages (whitened) and returns, then `ppo_epochs` passes of clipped policy + value
updates over mini-batches of `batch_size` sequences. The value head is a linear layer on the
policy's last hidden state (a shared trunk, as Ziegler et al. 2019); it is saved beside the
model folder as `value_head.safetensors`, so `model/` stays a plain causal LM.

Rollouts come from `rollout.py`, the loop (and torchrun/DDP) from `rl_loop.py`. Under torchrun
advantages (and rewards, with `whiten_rewards`) are whitened with the statistics of every
rank's rollouts, and the adaptive KL controller sees the KL averaged over ranks, so every rank
keeps the same coefficient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.core import rl
from training.core.common import CancelFn, ProgressFn, TrainerHooks, TrainResult, masked_mean
from training.core.rl_loop import Batch, RolloutRun
from training.core.rollout import RolloutConfig, score_tokens
from training.core.verifiers import Row


@dataclass
class PPOConfig(RolloutConfig):
    """PPO settings (defaults after TRL's former PPOTrainer). `kl_target` switches the adaptive
    KL controller on (Ziegler et al.); otherwise `kl_coef` stays fixed."""

    learning_rate: float = 3e-6
    ppo_epochs: int = 4
    kl_coef: float = 0.05
    kl_target: float | None = None
    kl_horizon: int = 10_000
    gamma: float = 1.0
    lam: float = 0.95
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    whiten_rewards: bool = False


# --------------------------------------------------------------------------- PPO


def ppo_minibatch_loss(
    model: nn.Module, mb: Batch, config: PPOConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped policy loss + `vf_coef` x clipped value loss on one mini-batch of rollouts.
    `model` is the `PolicyWithValue` (or its DDP wrapper)."""
    out = model(mb["input_ids"], mb["mask"], config.temperature)
    mask = mb["mask"]
    pg, clip_frac, approx_kl = rl.ppo_policy_loss(
        out["logp"], mb["logp"], mb["advantages"], mask, config.cliprange
    )
    vf, vf_clip = rl.ppo_value_loss(
        out["values"], mb["values"], mb["returns"], mask, config.cliprange_value
    )
    stats = {
        "policy_loss": pg.detach(),
        "value_loss": vf.detach(),
        "clip_fraction": clip_frac,
        "value_clip_fraction": vf_clip,
        "approx_kl": approx_kl,
        "entropy": masked_mean(out["entropy"], mask),
    }
    return pg + config.vf_coef * vf, stats


def ppo_batch(run: RolloutRun, r: dict[str, Any], kl_coef: float) -> tuple[Batch, torch.Tensor]:
    """The update batch of a rollout: old log-probs and values, KL-penalised rewards, GAE
    advantages (whitened over every rank's rollouts) and returns; and the per-token KL."""
    config: PPOConfig = run.config  # type: ignore[assignment]
    ids, mask = r["input_ids"], r["mask"]
    old = score_tokens(run.policy.lm, ids, mask, config, run.policy.value_head)
    ref = score_tokens(run.ref, ids, mask, config)
    rewards, kl = rl.kl_penalty_rewards(old["logp"], ref["logp"], mask, kl_coef, r["scores"])
    if config.whiten_rewards:
        rewards = rl.whiten(rewards, mask, shift_mean=False, all_sum=run.all_sum)
    advantages, returns = rl.gae(rewards, old["values"], mask, config.gamma, config.lam)
    batch = {
        "input_ids": ids,
        "mask": mask,
        "logp": old["logp"],
        "values": old["values"],
        "advantages": rl.whiten(advantages, mask, all_sum=run.all_sum),
        "returns": returns,
    }
    return batch, kl


def ppo_step(run: RolloutRun, step: int, kl_ctl: Any) -> dict[str, float]:
    """One PPO iteration: rollouts, advantages, then `ppo_epochs` over mini-batches."""
    config: PPOConfig = run.config  # type: ignore[assignment]
    r = run.rollout(step, 1)
    batch, kl = ppo_batch(run, r, kl_ctl.value)
    metrics = run.update(batch, lambda model, mb: ppo_minibatch_loss(model, mb, config))
    mask = batch["mask"]
    seq_kl = kl.sum(1).mean().item()
    metrics.update(
        reward=r["scores"].mean().item(),
        kl=seq_kl,
        non_score_reward=-kl_ctl.value * seq_kl,
        kl_coef=kl_ctl.value,
        completion_length=mask.sum(1).float().mean().item(),
    )
    # Averaged over ranks before the controller moves, so every rank keeps the same coefficient.
    metrics = run.mean_over_ranks(metrics)
    kl_ctl.update(metrics["kl"], mask.size(0) * run.ctx.world_size)
    run.extra_state["kl_coef"] = kl_ctl.value
    return metrics


def train_ppo(
    config: PPOConfig,
    rows: Sequence[Row],
    base_model: str | Path,
    output_dir: str | Path,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    resume_from: str | Path | None = None,
) -> TrainResult:
    """Train a policy with PPO on prompts (`prompt` or `messages` rows; `answer`/`tests` for
    verifiers). The reference is the frozen base model."""
    hooks = TrainerHooks(on_progress, should_cancel)
    run = RolloutRun("ppo", config, rows, base_model, output_dir, hooks, True, True)
    if resume_from:
        run.resume(resume_from)
    kl_coef = run.extra_state.get("kl_coef", config.kl_coef)
    kl_ctl: Any = (
        rl.AdaptiveKLController(kl_coef, config.kl_target, config.kl_horizon)
        if config.kl_target
        else rl.FixedKLController(kl_coef)
    )
    title = f"PPO tuning of {Path(base_model).name}"
    return run.run(lambda r, s: ppo_step(r, s, kl_ctl), title)
