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


def test_an_unknown_kind_of_run_is_refused_by_the_trainer_table():
    from training.core.launch import trainer

    assert trainer("sft")[1].__name__ == "train_sft"
    with pytest.raises(ValueError, match="unknown trainer 'bogus'"):
        trainer("bogus")


def test_a_guarded_job_ends_when_the_process_that_started_it_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "sleeper.py").write_text("import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    root = Path(__file__).resolve().parents[3]
    # A parent that starts the guarded job, says its pid, then waits to be killed.
    parent_code = (
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-m', 'training.core.launch', '--guard',"
        " str(os.getpid()), 'sleeper'], stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path)])}
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True, env=env
    )
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:  # a zombie waiting for init to reap it counts as gone
            if Path(f"/proc/{child_pid}/stat").read_text().split()[2] == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("the guarded job outlived the process that started it")
