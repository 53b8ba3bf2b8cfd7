"""Each loss against values worked out by hand with scalar math."""

from __future__ import annotations

import math

import pytest
import torch

from training.core import losses as L


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def softplus(x: float) -> float:  # -log sigmoid(-x)
    return math.log1p(math.exp(x))


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# policy chosen/rejected, reference chosen/rejected: log-ratios (0.5, 0.0) and (-0.5, 0.5)
PC, PR, RC, RR = t(-1.0, -2.0), t(-3.0, -1.0), t(-1.5, -2.0), t(-2.5, -1.5)
DELTAS = [1.0, -0.5]


def test_dpo_loss_is_minus_log_sigmoid_of_beta_times_margin() -> None:
    loss, stats = L.dpo_loss(PC, PR, RC, RR, beta=0.1)
    expected = sum(softplus(-0.1 * d) for d in DELTAS) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert stats["rewards/chosen"].item() == pytest.approx((0.05 + 0.0) / 2)
    assert stats["rewards/rejected"].item() == pytest.approx((-0.05 + 0.05) / 2)
    assert stats["rewards/margins"].item() == pytest.approx((0.1 - 0.05) / 2)
    assert stats["rewards/accuracies"].item() == 0.5


def test_dpo_loss_with_label_smoothing_mixes_both_directions_as_cdpo() -> None:
    loss, _ = L.dpo_loss(PC, PR, RC, RR, beta=0.1, label_smoothing=0.2)
    expected = sum(0.8 * softplus(-0.1 * d) + 0.2 * softplus(0.1 * d) for d in DELTAS) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_robust_dpo_loss_debiases_flipped_labels() -> None:
    loss, _ = L.robust_dpo_loss(PC, PR, RC, RR, beta=0.1, label_smoothing=0.1)
    expected = sum((0.9 * softplus(-0.1 * d) - 0.1 * softplus(0.1 * d)) / 0.8 for d in DELTAS) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_robust_dpo_loss_rejects_smoothing_of_one_half() -> None:
    with pytest.raises(ValueError):
        L.robust_dpo_loss(PC, PR, RC, RR, label_smoothing=0.5)


def test_hinge_loss_is_relu_of_one_minus_beta_margin() -> None:
    loss, _ = L.hinge_loss(PC, PR, RC, RR, beta=2.0)
    expected = (max(0.0, 1 - 2.0 * 1.0) + max(0.0, 1 - 2.0 * -0.5)) / 2
    assert loss.item() == pytest.approx(expected)


def test_ipo_loss_squares_the_per_token_margin_minus_half_over_tau() -> None:
    lengths_c, lengths_r = t(2, 4), t(5, 1)
    loss, _ = L.ipo_loss(PC, PR, RC, RR, lengths_c, lengths_r, beta=0.1)
    d0 = 0.5 / 2 - (-0.5) / 5
    d1 = 0.0 / 4 - 0.5 / 1
    expected = ((d0 - 5.0) ** 2 + (d1 - 5.0) ** 2) / 2
    assert loss.item() == pytest.approx(expected)


def test_rdpo_loss_adds_alpha_times_length_difference_inside_the_sigmoid() -> None:
    lengths_c, lengths_r = t(10, 3), t(4, 3)
    loss, _ = L.rdpo_loss(PC, PR, RC, RR, lengths_c, lengths_r, beta=0.1, alpha=0.05)
    expected = (softplus(-(0.1 * 1.0 + 0.05 * 6)) + softplus(-(0.1 * -0.5 + 0.0))) / 2
    assert loss.item() == pytest.approx(expected)


def test_rdpo_with_zero_alpha_equals_dpo() -> None:
    lengths = t(3, 7)
    a, _ = L.rdpo_loss(PC, PR, RC, RR, lengths, lengths + 5, alpha=0.0)
    b, _ = L.dpo_loss(PC, PR, RC, RR)
    assert a.item() == pytest.approx(b.item())


def test_simpo_loss_uses_length_normalised_rewards_and_a_margin() -> None:
    lengths_c, lengths_r = t(2, 4), t(3, 1)
    loss, stats = L.simpo_loss(PC, PR, lengths_c, lengths_r, beta=2.0, gamma=1.0)
    r = [(2.0 * -1.0 / 2, 2.0 * -3.0 / 3), (2.0 * -2.0 / 4, 2.0 * -1.0 / 1)]
    expected = sum(softplus(-(rc - rr - 1.0)) for rc, rr in r) / 2
    assert loss.item() == pytest.approx(expected)
    assert stats["rewards/chosen"].item() == pytest.approx((-1.0 + -1.0) / 2)


def test_orpo_loss_is_nll_minus_lambda_log_sigmoid_log_odds() -> None:
    lengths_c, lengths_r = t(2, 4), t(3, 1)
    loss, stats = L.orpo_loss(PC, PR, lengths_c, lengths_r, beta=0.1)

    def log_odds(avg: float) -> float:
        return avg - math.log1p(-math.exp(avg))

    avgs = [(-1.0 / 2, -3.0 / 3), (-2.0 / 4, -1.0 / 1)]
    ratio = sum(-softplus(-(log_odds(c) - log_odds(r))) for c, r in avgs) / 2
    nll = 3.0 / 6  # -(sum of chosen log-probs) / chosen tokens
    assert stats["nll"].item() == pytest.approx(nll)
    assert loss.item() == pytest.approx(nll - 0.1 * ratio)


def test_kto_loss_weights_desirable_and_undesirable_answers_around_the_kl_point() -> None:
    policy, ref = t(-1.0, -2.0, -4.0), t(-2.0, -2.5, -3.0)
    labels = torch.tensor([True, False, True])
    kl = torch.tensor(0.2, dtype=torch.float64)
    loss, stats = L.kto_loss(
        policy, ref, labels, kl, beta=0.5, desirable_weight=1.0, undesirable_weight=2.0
    )
    expected = (
        (1 - sig(0.5 * (1.0 - 0.2)))
        + 2.0 * (1 - sig(0.5 * (0.2 - 0.5)))
        + (1 - sig(0.5 * (-1.0 - 0.2)))
    ) / 3
    assert loss.item() == pytest.approx(expected)
    assert stats["rewards/chosen"].item() == pytest.approx((0.5 + -0.5) / 2)
    assert stats["rewards/rejected"].item() == pytest.approx(0.25)
    assert stats["kl"].item() == pytest.approx(0.2)


def test_kto_kl_estimate_is_a_clamped_detached_mean() -> None:
    policy = torch.tensor([-1.0, -3.0], requires_grad=True)
    assert L.kto_kl_estimate(policy, torch.tensor([-2.0, -2.5])).item() == pytest.approx(0.25)
    negative = L.kto_kl_estimate(policy, torch.tensor([0.0, 0.0]))
    assert negative.item() == 0.0 and not negative.requires_grad


def test_bradley_terry_loss_subtracts_the_margin() -> None:
    chosen, rejected = t(1.0, 0.0), t(0.5, 0.5)
    loss, stats = L.bradley_terry_loss(chosen, rejected, margin=t(0.25, 0.0))
    expected = (softplus(-(0.5 - 0.25)) + softplus(0.5)) / 2
    assert loss.item() == pytest.approx(expected)
    assert stats["rewards/accuracies"].item() == 0.5
    assert stats["rewards/margins"].item() == pytest.approx(0.0)


def test_bradley_terry_centering_penalises_the_squared_sum() -> None:
    chosen, rejected = t(1.0), t(0.5)
    loss, _ = L.bradley_terry_loss(chosen, rejected, center_coefficient=0.01)
    assert loss.item() == pytest.approx(softplus(-0.5) + 0.01 * 1.5**2)


def test_sft_loss_averages_over_masked_tokens_only() -> None:
    logps = t(-1.0, -2.0, -3.0, -4.0).reshape(2, 2)
    mask = torch.tensor([[1, 0], [1, 1]])
    loss, stats = L.sft_loss(logps, mask)
    assert loss.item() == pytest.approx((1 + 3 + 4) / 3)
    assert stats["tokens"].item() == 3
    seq_loss, _ = L.sequence_sft_loss(t(-1.0, -7.0), t(1, 2))
    assert seq_loss.item() == pytest.approx(loss.item())


def test_losses_are_differentiable_in_the_policy_log_probs() -> None:
    pc = PC.clone().requires_grad_(True)
    loss, _ = L.dpo_loss(pc, PR, RC, RR)
    loss.backward()
    # Raising a chosen log-prob must lower the loss.
    assert (pc.grad < 0).all()
