"""PPO and GRPO under `torchrun`: two CPU processes on the gloo backend with DDP.

The test starts this file under torchrun; each rank runs PPO (through `train_ppo`) and then
GRPO (through the `launch` entry point) on the toy model, and writes what it ended with: its
policy weights, its history, how often it reported progress and which prompts it took. PPO
also runs cancelled part-way and resumed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from training.core.launch import PROGRESS_PREFIX

REPO = Path(__file__).resolve().parents[3]
STEPS = 3
ROWS = [{"prompt": f"{a} + {b} =", "answer": str(a + b)} for a in range(4) for b in range(4)]
PPO = {
    "learning_rate": 3e-3,
    "rollout_batch_size": 4,
    "batch_size": 2,
    "ppo_epochs": 2,
    "max_new_tokens": 4,
    "max_steps": STEPS,
    "save_every": 2,
    "whiten_rewards": True,
    "verifier": "contains",
    "verifier_args": {"word": "cat"},
}
GRPO = {
    "learning_rate": 1e-2,
    "rollout_batch_size": 2,
    "group_size": 4,
    "batch_size": 4,
    "max_new_tokens": 1,
    "max_steps": STEPS,
    "verifier": "exact_match",
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both runs on two ranks, once for the module; the folder they wrote."""
    from tests.training.core.test_ppo import build_toy_model

    model = build_toy_model(tmp_path_factory.mktemp("toy-llama"))
    out = tmp_path_factory.mktemp("ddp-rl")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*argv, __file__, str(model), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (out / "stdout.txt").write_text(proc.stdout)
    return out


@pytest.mark.parametrize("kind", ["ppo", "grpo"])
def test_both_ranks_end_with_the_weights_rank_0_saved(ran: Path, kind: str) -> None:
    rank0 = load_file(str(ran / f"{kind}-rank0.safetensors"))
    rank1 = load_file(str(ran / f"{kind}-rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0)
    saved = load_file(str(ran / kind / "model" / "model.safetensors"))
    start = load_file(str(Path(json.loads((ran / "ppo-rank0.json").read_text())["base"])))
    moved = False
    for name, value in saved.items():
        torch.testing.assert_close(value, rank0[f"lm.{name}"], rtol=0, atol=0)
        moved = moved or not torch.equal(value, start[name])
    assert moved, "training left the weights where they started"


@pytest.mark.parametrize("kind", ["ppo", "grpo"])
def test_metrics_are_the_same_on_both_ranks_and_only_rank_0_reports(ran: Path, kind: str) -> None:
    rank0 = json.loads((ran / f"{kind}-rank0.json").read_text())
    rank1 = json.loads((ran / f"{kind}-rank1.json").read_text())
    assert rank0["status"] == rank1["status"] == "completed"
    assert rank0["history"] == rank1["history"] and len(rank0["history"]) == STEPS
    if kind == "ppo":
        assert (rank0["reports"], rank1["reports"]) == (STEPS, 0)
    else:  # through `launch`, which prints one line per report
        printed = (ran / "stdout.txt").read_text().splitlines()
        assert sum(line.startswith(PROGRESS_PREFIX) for line in printed) == STEPS
    assert {"reward", "kl", "entropy", "clip_fraction", "loss"} <= rank0["history"][-1].keys()
    # Each rank prompted its own rows: together, the first slice of the shuffled stream.
    size = (PPO if kind == "ppo" else GRPO)["rollout_batch_size"]
    order = torch.randperm(len(ROWS), generator=torch.Generator().manual_seed(42 * 1_000_003))
    assert rank0["prompts"] + rank1["prompts"] == order[: 2 * size].tolist()


def test_ppo_writes_one_model_folder_a_value_head_and_checkpoints(ran: Path) -> None:
    run = ran / "ppo"
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "model",
        "value_head.safetensors",
    ]
    ckpt = run / "checkpoints" / f"checkpoint-{STEPS}"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["extra"]["kl_coef"] == 0.05
    assert len(torch.load(ckpt / "rng.pt", weights_only=False)) == 2  # one per rank


def test_ppo_cancelled_on_rank_0_stops_every_rank_and_resumes_to_the_same_weights(
    ran: Path,
) -> None:
    for rank in (0, 1):
        assert json.loads((ran / f"ppo-cut-rank{rank}.json").read_text())["status"] == "cancelled"
    full = load_file(str(ran / "ppo-rank0.safetensors"))
    for rank in (0, 1):
        resumed = load_file(str(ran / f"ppo-resumed-rank{rank}.safetensors"))
        for name in full:
            torch.testing.assert_close(resumed[name], full[name])


def test_grpo_runs_through_the_launch_entry_point(ran: Path) -> None:
    result = json.loads((ran / "grpo" / "result.json").read_text())
    assert result["status"] == "completed" and result["step"] == result["total_steps"] == STEPS
    assert sorted(p.name for p in (ran / "grpo").iterdir()) == ["model", "result.json"]


# --------------------------------------------------------------------------- the ranks


def _worker(model: str, out: Path) -> None:
    """What each rank runs: PPO, then GRPO through `launch.main`, recording each run."""
    from training.core import launch
    from training.core.ppo import PPOConfig, train_ppo
    from training.core.rl_loop import RolloutRun

    rank = int(os.environ["RANK"])
    runs: list[RolloutRun] = []
    original = RolloutRun.run

    def recorded(self: RolloutRun, *args: Any, **kwargs: Any) -> Any:
        runs.append(self)
        return original(self, *args, **kwargs)

    RolloutRun.run = recorded  # type: ignore[method-assign]
    reports: list[int] = []
    result = train_ppo(
        PPOConfig(**PPO), ROWS, model, out / "ppo", on_progress=lambda s, n, m: reports.append(s)
    )
    _record(out, "ppo", rank, runs[-1], result.status, len(reports), model)
    _cancel_and_resume(out, rank, runs, model)

    rows, config = out / f"rows-{rank}.jsonl", out / f"grpo-{rank}.json"
    rows.write_text("\n".join(json.dumps(r) for r in ROWS))
    config.write_text(json.dumps(GRPO))
    argv = ["grpo", "--config", str(config), "--rows", str(rows), "--base-model", model]
    launch.main([*argv, "--output", str(out / "grpo")])
    status = json.loads((out / "grpo" / "result.json").read_text())["status"]
    # `launch` reports progress as printed lines; the test counts them in the output.
    _record(out, "grpo", rank, runs[-1], status, None, model)


def _cancel_and_resume(out: Path, rank: int, runs: list[Any], model: str) -> None:
    """PPO cancelled on rank 0 before its third step, then resumed from its checkpoint."""
    from training.core.ppo import PPOConfig, train_ppo

    calls: list[int] = []

    def cancel_at_step_three() -> bool:
        calls.append(1)
        return len(calls) == 3

    config = PPOConfig(**PPO)
    cut = train_ppo(config, ROWS, model, out / "ppo-cut", should_cancel=cancel_at_step_three)
    (out / f"ppo-cut-rank{rank}.json").write_text(json.dumps({"status": cut.status}))
    done = train_ppo(config, ROWS, model, out / "ppo-cut", resume_from=cut.checkpoint_dir)
    _record(out, "ppo-resumed", rank, runs[-1], done.status, None, model)


def _record(
    out: Path, kind: str, rank: int, run: Any, status: str, reports: int | None, model: str
) -> None:
    from training.core.checkpoint import trainable_state_dict

    save_file(trainable_state_dict(run.policy), str(out / f"{kind}-rank{rank}.safetensors"))
    facts = {
        "status": status,
        "history": run.history,
        "reports": reports,
        "prompts": run.prompt_indices(0),
        "base": str(Path(model) / "model.safetensors"),
    }
    (out / f"{kind}-rank{rank}.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    _worker(sys.argv[1], Path(sys.argv[2]))
