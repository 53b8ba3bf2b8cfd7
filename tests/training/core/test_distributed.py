"""The trainers under `torchrun`: two CPU processes on the gloo backend, DDP and FSDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.core.conftest import make_pairs

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_torchrun_with_two_processes_finishes_on_both_ranks_and_saves_a_loadable_model(
    tiny_model_dir: Path, tmp_path: Path, strategy: str
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in make_pairs(32, seed=41)))
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "batch_size": 4,
                "max_length": 64,
                "learning_rate": 1e-3,
                "save_every": 2,
                "distributed_strategy": strategy,
            }
        )
    )
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "training.core.launch", "dpo",
               "--config", str(config), "--rows", str(rows),
               "--base-model", str(tiny_model_dir), "--output", str(out)]  # fmt: skip
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "rank 0 finished: completed" in proc.stdout
    assert "rank 1 finished: completed" in proc.stdout

    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed" and result["step"] == result["total_steps"] == 4
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(result["model_dir"])
    assert model.config.num_hidden_layers == 2
    assert (out / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists()
