"""The reward model's held-out split and the interval its accuracy is shown with."""

from __future__ import annotations

import pytest

from training.core.reward import split_holdout, wilson_interval


def _rows(prompts: int, pairs_each: int) -> list[dict[str, str]]:
    return [
        {"prompt": f"p{p}", "chosen": f"good {i}", "rejected": f"bad {i}"}
        for p in range(prompts)
        for i in range(pairs_each)
    ]


def test_no_prompt_is_on_both_sides_of_the_split():
    train, held = split_holdout(_rows(100, 3), 0.1, seed=1)
    assert {r["prompt"] for r in train}.isdisjoint({r["prompt"] for r in held})
    assert len(train) + len(held) == 300


def test_the_split_holds_out_at_least_the_minimum_while_two_thirds_remain():
    _, held = split_holdout(_rows(1000, 1), 0.1, seed=1, min_pairs=200)
    assert len(held) == 200  # 10% would be 100
    _, held = split_holdout(_rows(300, 1), 0.1, seed=1, min_pairs=200)
    assert len(held) == 100  # a third of 300: training keeps 200
    _, held = split_holdout(_rows(5000, 1), 0.1, seed=1, min_pairs=200)
    assert len(held) == 500  # 10% is more than the minimum


def test_the_split_is_seeded_and_never_holds_out_every_prompt():
    assert split_holdout(_rows(50, 2), 0.1, 3) == split_holdout(_rows(50, 2), 0.1, 3)
    train, held = split_holdout(_rows(2, 5), 0.9, seed=0, min_pairs=200)
    assert train and held


def test_wilson_interval_is_wide_on_few_pairs_and_narrow_on_many():
    low, high = wilson_interval(2, 5)
    assert low < 0.15 and high > 0.75
    low, high = wilson_interval(600, 1000)
    assert low == pytest.approx(0.569, abs=1e-3) and high == pytest.approx(0.630, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
