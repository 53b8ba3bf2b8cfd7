"""A trainer run under torchrun from another process, as a platform worker runs a job on
several GPUs: progress comes back line by line, cancellation reaches the ranks, and the
result is rank 0's TrainResult."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.core.conftest import make_pairs
from training.core.dpo import DPOConfig
from training.core.launch import train_under_torchrun


def _config(**overrides) -> DPOConfig:
    values = dict(batch_size=4, max_length=64, learning_rate=1e-3, save_every=2, seed=3)
    return DPOConfig(**{**values, **overrides})


def test_two_processes_report_progress_and_return_the_result(tiny_model_dir: Path, tmp_path):
    progress, logged = [], []
    result = train_under_torchrun(
        "dpo",
        _config(),
        make_pairs(32, seed=41),
        tiny_model_dir,
        tmp_path / "run",
        processes=2,
        on_progress=lambda step, total, metrics: progress.append((step, total, metrics)),
        log=logged.append,
    )
    assert result.status == "completed" and result.step == result.total_steps == 4
    assert Path(result.model_dir, "config.json").exists()
    assert [p[0] for p in progress] == [1, 2, 3, 4] and all(p[1] == 4 for p in progress)
    assert all("loss" in p[2] for p in progress)
    assert any("rank 1 finished: completed" in line for line in logged)


def test_cancellation_reaches_the_ranks_and_resume_finishes(tiny_model_dir: Path, tmp_path):
    steps: list[int] = []
    result = train_under_torchrun(
        "dpo",
        _config(),
        make_pairs(48, seed=42),
        tiny_model_dir,
        tmp_path / "run",
        processes=2,
        on_progress=lambda step, total, metrics: steps.append(step),
        should_cancel=lambda: bool(steps),
        poll_s=0.05,
    )
    assert result.status == "cancelled" and result.checkpoint_dir
    assert result.step < result.total_steps == 6
    resumed = train_under_torchrun(
        "dpo",
        _config(),
        make_pairs(48, seed=42),
        tiny_model_dir,
        tmp_path / "run",
        processes=2,
        resume_from=result.checkpoint_dir,
    )
    assert resumed.status == "completed" and resumed.step == 6


def test_a_failing_job_raises_with_its_output(tiny_model_dir: Path, tmp_path):
    with pytest.raises(RuntimeError, match="torchrun exited with code"):
        train_under_torchrun(
            "dpo",
            _config(),
            make_pairs(8, seed=1),
            tmp_path / "no-such-model",
            tmp_path / "run",
            processes=2,
        )
