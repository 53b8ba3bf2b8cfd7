"""The pure RL functions against hand-computed cases."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from training.core import rl

MASK = torch.tensor([[1, 1, 1, 0]], dtype=torch.bool)


def test_gae_matches_the_hand_computed_recursion_and_ignores_padding() -> None:
    rewards = torch.tensor([[0.1, 0.0, 1.0, 9.0]])  # the 9 sits on padding
    values = torch.tensor([[0.5, 0.4, 0.2, 7.0]])
    adv, returns = rl.gae(rewards, values, MASK, gamma=0.9, lam=0.8)
    # t=2: 1 - 0.2 = 0.8; t=1: (0.9*0.2 - 0.4) + 0.72*0.8 = 0.356; t=0: -0.04 + 0.72*0.356
    expected = torch.tensor([[0.21632, 0.356, 0.8, 0.0]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(returns, torch.tensor([[0.71632, 0.756, 1.0, 0.0]]))


def test_gae_gives_prompt_positions_no_advantage() -> None:
    mask = torch.tensor([[0, 1, 1]], dtype=torch.bool)
    adv, _ = rl.gae(torch.tensor([[5.0, 0.0, 1.0]]), torch.zeros(1, 3), mask, 1.0, 1.0)
    torch.testing.assert_close(adv, torch.tensor([[0.0, 1.0, 1.0]]))


def test_whiten_uses_only_masked_entries_with_bessel_correction() -> None:
    out = rl.whiten(torch.tensor([[1.0, 2.0, 3.0, 100.0]]), MASK)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-6, rtol=0)


def test_whiten_without_mean_shift_keeps_the_mean() -> None:
    out = rl.whiten(torch.tensor([[1.0, 2.0, 3.0, 100.0]]), MASK, shift_mean=False)
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0, 3.0, 0.0]]), atol=1e-6, rtol=0)


def test_whiten_with_all_sum_uses_the_statistics_of_every_process() -> None:
    # Two "ranks" as threads, each holding half the rows; all_sum adds their tensors up.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, generator=g)
    mask = torch.rand(4, 6, generator=g) > 0.3
    halves = [(x[:2], mask[:2]), (x[2:], mask[2:])]
    barrier, deposits, out = threading.Barrier(2), [[], []], [None, None]

    def run(rank: int) -> None:
        def all_sum(t: torch.Tensor) -> torch.Tensor:
            deposits[rank].append(t)
            barrier.wait()
            total = deposits[0][-1] + deposits[1][-1]
            barrier.wait()
            return total

        out[rank] = rl.whiten(*halves[rank], all_sum=all_sum)

    threads = [threading.Thread(target=run, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    torch.testing.assert_close(torch.cat(out), rl.whiten(x, mask))
    assert not torch.allclose(torch.cat([rl.whiten(*h) for h in halves]), rl.whiten(x, mask))


def test_kl_penalty_rewards_put_the_score_on_the_last_completion_token() -> None:
    logp = torch.tensor([[-1.0, -2.0, -3.0, 0.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0, 0.0]])
    rewards, kl = rl.kl_penalty_rewards(logp, ref, MASK, 0.1, torch.tensor([2.0]))
    torch.testing.assert_close(kl, torch.tensor([[0.5, 0.0, -1.0, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 0.0, 2.1, 0.0]]))


def test_ppo_policy_loss_takes_the_pessimistic_term() -> None:
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]]))
    old = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, 1.0, -1.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    loss, clip_frac, approx_kl = rl.ppo_policy_loss(logp, old, adv, mask, clip=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(-0.5, -0.8) = -0.5; token 2: 1
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.0) / 3, abs=1e-6)
    assert clip_frac.item() == pytest.approx(1 / 3)
    expected_kl = 0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2) / 3
    assert approx_kl.item() == pytest.approx(expected_kl, abs=1e-6)


def test_ppo_policy_loss_gradient_vanishes_once_the_ratio_is_clipped() -> None:
    logp = torch.tensor([[math.log(1.5)]], requires_grad=True)
    loss, _, _ = rl.ppo_policy_loss(logp, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    loss.backward()
    assert logp.grad is not None and logp.grad.item() == 0.0


def test_ppo_value_loss_clips_the_value_step() -> None:
    values = torch.tensor([[1.0, 0.0]])
    old = torch.tensor([[0.5, 0.0]])
    returns = torch.tensor([[2.0, 0.1]])
    loss, clip_frac = rl.ppo_value_loss(values, old, returns, torch.ones(1, 2), clip=0.2)
    # token 0: max((1-2)^2, (0.7-2)^2) = 1.69; token 1: 0.01
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.01) / 2, abs=1e-6)
    assert clip_frac.item() == pytest.approx(0.5)


def test_adaptive_kl_controller_moves_towards_the_target_by_at_most_20_percent() -> None:
    ctl = rl.AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    ctl.update(12.0, n_steps=100)  # error 1.0 clipped to 0.2
    assert ctl.value == pytest.approx(0.1 * 1.002)
    ctl = rl.AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    ctl.update(6.6, n_steps=1000)  # error 0.1
    assert ctl.value == pytest.approx(0.1 * 1.01)
    ctl.update(0.0, n_steps=1000)  # error -1 clipped to -0.2
    assert ctl.value == pytest.approx(0.1 * 1.01 * 0.98)
    fixed = rl.FixedKLController(0.3)
    fixed.update(100.0, 1000)
    assert fixed.value == 0.3


def test_group_advantages_normalise_within_each_group() -> None:
    adv = rl.group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    torch.testing.assert_close(adv, torch.tensor([[a, -a, -a, a], [0.0, 0.0, 0.0, 0.0]]))
    centred = rl.group_advantages(torch.tensor([[3.0, 1.0]]), scale=False)
    torch.testing.assert_close(centred, torch.tensor([[1.0, -1.0]]))


def test_grpo_loss_averages_per_sequence_or_per_token() -> None:
    logp = torch.zeros(2, 2)
    mask = torch.tensor([[1, 1], [1, 0]], dtype=torch.bool)
    adv = torch.tensor([1.0, -1.0])
    seq, stats = rl.grpo_loss(logp, logp, logp, adv, mask, beta=0.04, loss_type="grpo")
    tok, _ = rl.grpo_loss(logp, logp, logp, adv, mask, beta=0.04, loss_type="dapo")
    assert seq.item() == pytest.approx(0.0)  # (-1 + 1) / 2
    assert tok.item() == pytest.approx(-1 / 3)  # (-1 - 1 + 1) / 3
    assert stats["kl"].item() == 0.0


def test_k3_kl_is_non_negative_and_zero_only_at_equality() -> None:
    kl = rl.k3_kl(torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-1.0, -1.0, -2.0]))
    assert kl[0].item() == 0.0 and (kl[1:] > 0).all()
    assert kl[1].item() == pytest.approx(math.exp(1) - 1 - 1)
