"""Pure tensor functions of on-policy RL for language models (PPO, GRPO).

Layout: per-token tensors are (B, T) over the positions that predict tokens (as
`CompletionScorer.token_logps_2d`), with `mask` marking the completion tokens. Everything
outside the mask is ignored and comes back as zero.

References: PPO for LMs (Ziegler et al. 2019, 1909.08593; InstructGPT, 2203.02155), GAE
(Schulman et al. 2015, 1506.02438), GRPO (DeepSeekMath, 2402.03300).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from training.core.common import masked_mean

SumFn = Callable[[torch.Tensor], torch.Tensor]


def masked_moments(
    x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True, all_sum: SumFn | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the masked entries (Bessel-corrected, as TRL's PPO).  # -> (), ()

    `all_sum` adds a tensor up over processes (an all-reduce under torchrun): the moments are
    then those of every rank's entries together, computed in two passes as in one process.
    """
    m = mask.to(x.dtype)
    total = torch.stack([(x * m).sum(), m.sum()])
    total = all_sum(total) if all_sum is not None else total
    n = total[1]
    mean = total[0] / n.clamp(min=1)
    sq = ((x - mean) ** 2 * m).sum()
    sq = all_sum(sq) if all_sum is not None else sq
    var = sq / n.clamp(min=1)
    if unbiased:
        var = var * n / (n - 1).clamp(min=1)
    return mean, var


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked entries (Bessel-corrected, as TRL's PPO).  # (B, T) -> ()"""
    return masked_moments(x, mask, unbiased)[1]


def whiten(
    x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, all_sum: SumFn | None = None
) -> torch.Tensor:
    """Zero-mean, unit-variance over the masked entries; zero elsewhere.  # (B, T) -> (B, T)

    With `shift_mean=False` only the scale changes (used for rewards, whose sign matters).
    With `all_sum` the statistics are global over processes (see `masked_moments`).
    """
    m = mask.to(x.dtype)
    mean, var = masked_moments(x, m, all_sum=all_sum)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * m


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last set position of each row (0 for an empty row).  # (B, T) -> (B,)"""
    t = torch.arange(mask.size(1), device=mask.device)
    return (mask.bool() * t).amax(dim=1)


def kl_penalty_rewards(
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    final_reward: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards of RLHF: `-kl_coef * (logp - ref_logp)` on every completion token, plus
    the scalar score at the last completion token (InstructGPT eq. 2).

    logp, ref_logp, mask (B, T); final_reward (B,). Returns rewards (B, T) and the per-token KL
    estimate (B, T) that was penalised (both zero outside the mask).
    """
    m = mask.to(logp.dtype)
    kl = (logp - ref_logp) * m
    rewards = -kl_coef * kl
    rows = torch.arange(logp.size(0), device=logp.device)
    rewards[rows, last_token_index(mask)] += final_reward.to(rewards.dtype)
    return rewards * m, kl


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each row's completion.  # (B, T) x3 -> (B, T) x2

    The episode ends after the last masked token (its next value is 0). Returns advantages and
    returns (`advantages + values`, the value targets), zero outside the mask.
    """
    m = mask.to(values.dtype)
    values = values * m
    t_len = rewards.size(1)
    adv = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(t_len)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        cur = delta + gamma * lam * next_adv
        # Positions outside the completion pass nothing back (prompt/padding are not steps).
        adv[:, t] = cur * m[:, t]
        next_adv = adv[:, t]
        next_value = values[:, t]
    return adv, (adv + values) * m


def ppo_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate, averaged over the masked tokens.  # (B, T) x4 -> () x3

    Returns the loss, the clip fraction (share of tokens where the clipped term was taken) and
    the approximate KL to the rollout policy, `mean(0.5 * (logp - old_logp)^2)` (as TRL).
    """
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip, 1 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_frac = masked_mean((clipped > unclipped).to(logp.dtype), mask)
    approx_kl = masked_mean(0.5 * log_ratio.detach() ** 2, mask)
    return loss, clip_frac.detach(), approx_kl


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss `0.5 * max((v - R)^2, (v_clip - R)^2)`, masked mean.  # -> (), ()

    The new value may move at most `clip` from the rollout's value before the clipped term
    takes over. Returns the loss and the clip fraction.
    """
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(loss_unclipped, loss_clipped), mask)
    clip_frac = masked_mean((loss_clipped > loss_unclipped).to(values.dtype), mask)
    return loss, clip_frac.detach()


class FixedKLController:
    """A constant KL coefficient."""

    def __init__(self, kl_coef: float) -> None:
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        pass


class AdaptiveKLController:
    """Adaptive KL coefficient of Ziegler et al. 2019 (sec. 2.2).

    The coefficient moves by `1 + clip(KL/target - 1, -0.2, 0.2) * n_steps / horizon` after
    each batch of `n_steps` samples, so the observed KL drifts towards `target`.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int = 10_000) -> None:
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + error * n_steps / self.horizon


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4, scale: bool = True) -> torch.Tensor:
    """GRPO's advantages: each reward minus its group's mean, over the group's std (Bessel
    corrected, as TRL).  # (P, G) -> (P, G)

    A group whose samples all scored the same gets zero advantage: it carries no signal.
    `scale=False` keeps only the centring (Dr. GRPO, 2503.20783).
    """
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale or rewards.size(1) < 2:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || ref) estimate `exp(r) - r - 1`, r = ref - logp (non-negative,
    unbiased; Schulman's k3, as GRPO).  # (B, T) -> (B, T)"""
    r = ref_logp - logp
    return r.exp() - r - 1


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    beta: float = 0.0,
    loss_type: str = "grpo",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO's clipped objective with a k3 KL penalty.  # (B, T) x3, advantages (B,) -> ()

    `loss_type="grpo"` averages tokens within each sequence, then sequences (the paper);
    `"dapo"` averages over all tokens of the batch, so long answers are not down-weighted.
    """
    m = mask.to(logp.dtype)
    ratio = (logp - old_logp).exp()
    adv = advantages[:, None]
    per_token = -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    kl = k3_kl(logp, ref_logp) if ref_logp is not None else torch.zeros_like(logp)
    per_token = per_token + beta * kl
    if loss_type == "grpo":
        loss = ((per_token * m).sum(1) / m.sum(1).clamp(min=1)).mean()
    elif loss_type == "dapo":
        loss = masked_mean(per_token, m)
    else:
        raise ValueError(f"unknown GRPO loss_type {loss_type!r}; 'grpo' or 'dapo'")
    clipped = (ratio.clamp(1 - clip, 1 + clip) * adv) < (ratio * adv)
    stats = {
        "kl": masked_mean(kl.detach(), m),
        "clip_fraction": masked_mean(clipped.to(logp.dtype), m),
    }
    return loss, stats
