"""Preference, reward and SFT losses as small pure functions.

Inputs are per-sequence summed log-probs of the completion tokens (shape (B,)) and, where a
loss needs them, completion lengths in tokens. Each function returns `(loss, stats)`: a scalar
loss to minimise and detached scalar tensors to log, named like TRL's metrics.

References:
- DPO, sigmoid loss: Rafailov et al. 2023, arXiv:2305.18290; cDPO label smoothing: Mitchell 2023.
- IPO: Azar et al. 2023, arXiv:2310.12036 (length-normalised as in TRL).
- Hinge (SLiC): Zhao et al. 2023, arXiv:2305.10425.
- Robust DPO (rDPO): Chowdhury et al. 2024, arXiv:2403.00409.
- R-DPO (length-regularised): Park et al. 2024, arXiv:2403.19159.
- SimPO: Meng et al. 2024, arXiv:2405.14734.
- ORPO: Hong et al. 2024, arXiv:2403.07691.
- KTO: Ethayarajh et al. 2024, arXiv:2402.01306.
- Bradley-Terry reward model: Ouyang et al. 2022 (InstructGPT), arXiv:2203.02155.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Stats = dict[str, torch.Tensor]

# Paper / TRL defaults for each loss; `beta` is the KL strength (IPO's tau, ORPO's lambda).
LOSS_DEFAULTS: dict[str, dict[str, float]] = {
    "sigmoid": {"beta": 0.1, "label_smoothing": 0.0},
    "ipo": {"beta": 0.1},
    "hinge": {"beta": 0.1},
    "robust": {"beta": 0.1, "label_smoothing": 0.1},
    "rdpo": {"beta": 0.1, "alpha": 0.01},
    "simpo": {"beta": 2.0, "gamma": 1.0},
    "orpo": {"beta": 0.1},
    "kto": {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0},
}
REFERENCE_FREE = frozenset({"simpo", "orpo"})


def reward_stats(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> Stats:
    """Mean implicit rewards, their margin and how often the chosen answer wins.  # (B,), (B,)"""
    c, r = chosen_rewards.detach(), rejected_rewards.detach()
    return {
        "rewards/chosen": c.mean(),
        "rewards/rejected": r.mean(),
        "rewards/margins": (c - r).mean(),
        "rewards/accuracies": (c > r).float().mean(),
    }


def _logratios(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    return policy_chosen - ref_chosen, policy_rejected - ref_rejected


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, Stats]:
    """-log sigmoid(beta * delta); with label smoothing eps, the conservative cDPO mixture."""
    lc, lr = _logratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    z = beta * (lc - lr)
    losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    return losses.mean(), reward_stats(beta * lc, beta * lr)


def robust_dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> tuple[torch.Tensor, Stats]:
    """rDPO: unbiased under labels flipped with probability eps (< 0.5)."""
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError("robust DPO needs 0 <= label_smoothing < 0.5")
    lc, lr = _logratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    z = beta * (lc - lr)
    eps = label_smoothing
    losses = (-(1 - eps) * F.logsigmoid(z) + eps * F.logsigmoid(-z)) / (1 - 2 * eps)
    return losses.mean(), reward_stats(beta * lc, beta * lr)


def ipo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, Stats]:
    """(delta - 1 / (2 tau))^2 on per-token log-ratios, so tau means the same at any length."""
    lc, lr = _logratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    delta = lc / chosen_lengths.clamp(min=1) - lr / rejected_lengths.clamp(min=1)
    losses = (delta - 1 / (2 * beta)) ** 2
    return losses.mean(), reward_stats(beta * lc, beta * lr)


def hinge_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, Stats]:
    """SLiC's hinge on the reference-normalised margin: relu(1 - beta * delta)."""
    lc, lr = _logratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    losses = torch.relu(1 - beta * (lc - lr))
    return losses.mean(), reward_stats(beta * lc, beta * lr)


def rdpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    beta: float = 0.1,
    alpha: float = 0.01,
) -> tuple[torch.Tensor, Stats]:
    """R-DPO: DPO plus alpha * (|y_w| - |y_l|) inside the sigmoid.

    A longer chosen answer already earns part of the margin, so the policy gains less by
    simply growing longer.
    """
    lc, lr = _logratios(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    length_term = alpha * (chosen_lengths.to(lc.dtype) - rejected_lengths.to(lc.dtype))
    losses = -F.logsigmoid(beta * (lc - lr) + length_term)
    return losses.mean(), reward_stats(beta * lc, beta * lr)


def simpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    beta: float = 2.0,
    gamma: float = 1.0,
) -> tuple[torch.Tensor, Stats]:
    """SimPO: no reference; the reward is beta * mean token log-prob, with a target margin gamma."""
    rc = beta * policy_chosen / chosen_lengths.clamp(min=1)
    rr = beta * policy_rejected / rejected_lengths.clamp(min=1)
    losses = -F.logsigmoid(rc - rr - gamma)
    return losses.mean(), reward_stats(rc, rr)


def orpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, Stats]:
    """ORPO: NLL of the chosen answers minus lambda * log sigmoid(log odds ratio); no reference.

    The odds use mean token log-probs; the NLL is the mean over all chosen tokens of the batch.
    """
    avg_c = policy_chosen / chosen_lengths.clamp(min=1)
    avg_r = policy_rejected / rejected_lengths.clamp(min=1)
    # log(1 - p) with p = exp(avg); the clamp keeps it finite when a log-prob reaches 0.
    log1m_c = torch.log1p(-torch.exp(avg_c.clamp(max=-1e-6)))
    log1m_r = torch.log1p(-torch.exp(avg_r.clamp(max=-1e-6)))
    log_odds = (avg_c - avg_r) - (log1m_c - log1m_r)
    ratio = F.logsigmoid(log_odds)
    nll = -policy_chosen.sum() / chosen_lengths.sum().clamp(min=1)
    loss = nll - beta * ratio.mean()
    stats = reward_stats(beta * avg_c, beta * avg_r)
    stats.update(
        {
            "nll": nll.detach(),
            "log_odds_ratio": ratio.detach().mean(),
            "log_odds_chosen": log_odds.detach().mean(),
        }
    )
    return loss, stats


def kto_kl_estimate(kl_policy: torch.Tensor, kl_ref: torch.Tensor) -> torch.Tensor:
    """KTO's reference point: the batch's mean log-ratio on mismatched pairs, clamped at 0 and
    detached (no gradient flows through z_0)."""
    return (kl_policy - kl_ref).mean().clamp(min=0).detach()


def kto_loss(
    policy_logps: torch.Tensor,
    ref_logps: torch.Tensor,
    labels: torch.Tensor,
    kl: torch.Tensor,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[torch.Tensor, Stats]:
    """KTO on unpaired answers: desirable ones pushed above the KL reference point, undesirable
    ones below it.  # (B,), (B,), (B,) bool, scalar"""
    logratios = policy_logps - ref_logps
    desirable = 1 - torch.sigmoid(beta * (logratios - kl))
    undesirable = 1 - torch.sigmoid(beta * (kl - logratios))
    losses = torch.where(labels, desirable_weight * desirable, undesirable_weight * undesirable)
    rewards = beta * logratios.detach()
    nan = torch.full_like(rewards, float("nan"))
    stats: Stats = {
        "rewards/chosen": torch.where(labels, rewards, nan).nanmean(),
        "rewards/rejected": torch.where(labels, nan, rewards).nanmean(),
        "kl": kl.detach(),
    }
    stats["rewards/margins"] = stats["rewards/chosen"] - stats["rewards/rejected"]
    return losses.mean(), stats


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coefficient: float | None = None,
) -> tuple[torch.Tensor, Stats]:
    """Reward-model loss -log sigmoid(r_w - r_l - margin); optional reward centring (Eisenstein
    et al. 2023) keeps scores near zero."""
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((chosen_rewards + rejected_rewards) ** 2).mean()
    return loss, reward_stats(chosen_rewards, rejected_rewards)


def sft_loss(token_logps: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, Stats]:
    """Mean negative log-likelihood over the masked tokens of the batch.  # (B, T), (B, T)"""
    m = mask.to(token_logps.dtype)
    n = m.sum().clamp(min=1)
    nll = -(token_logps * m).sum() / n
    return nll, {"nll": nll.detach(), "tokens": n.detach()}


def sequence_sft_loss(logps: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, Stats]:
    """The same from per-sequence sums.  # (B,), (B,)"""
    n = counts.sum().clamp(min=1).to(logps.dtype)
    nll = -logps.sum() / n
    return nll, {"nll": nll.detach(), "tokens": n.detach()}
