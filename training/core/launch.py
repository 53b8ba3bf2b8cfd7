"""Command line for the trainers, and the entry point `torchrun` starts on every rank.

    python -m training.core.launch dpo --config cfg.json --rows rows.jsonl \
        --base-model /models/base --output /runs/42
    torchrun --nproc_per_node 2 -m training.core.launch dpo ...

`--config` holds the fields of the trainer's config dataclass (LoRA settings as a nested
object). Rank 0 writes `result.json` (the `TrainResult`) into the output folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from training.core.config import LoraSettings

TRAINERS = ("sft", "reward", "dpo", "ppo", "grpo")


def _trainer(kind: str) -> tuple[type, Any]:
    if kind == "sft":
        from training.core.sft import SFTConfig, train_sft

        return SFTConfig, train_sft
    if kind == "reward":
        from training.core.reward import RewardConfig, train_reward

        return RewardConfig, train_reward
    if kind == "ppo":
        from training.core.ppo import PPOConfig, train_ppo

        return PPOConfig, train_ppo
    if kind == "grpo":
        from training.core.grpo import GRPOConfig, train_grpo

        return GRPOConfig, train_grpo
    from training.core.dpo import DPOConfig, train_dpo

    return DPOConfig, train_dpo


def build_config(cls: type, values: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SystemExit(f"unknown config fields for {cls.__name__}: {unknown}")
    values = dict(values)
    if isinstance(values.get("lora"), dict):
        values["lora"] = LoraSettings(**values["lora"])
    if isinstance(values.get("adam_betas"), list):
        values["adam_betas"] = tuple(values["adam_betas"])
    return cls(**values)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train a model with the platform's trainers.")
    p.add_argument("kind", choices=TRAINERS)
    p.add_argument("--config", help="JSON file with config fields")
    p.add_argument("--rows", required=True, help="JSONL training rows in TRL's column names")
    p.add_argument("--base-model", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--resume-from")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cls, train = _trainer(args.kind)
    values = json.loads(Path(args.config).read_text()) if args.config else {}
    config = build_config(cls, values)
    rank = int(os.environ.get("RANK", "0"))

    def progress(step: int, total: int, metrics: dict[str, float]) -> None:
        print(json.dumps({"step": step, "total": total, "loss": metrics.get("loss")}), flush=True)

    result = train(
        config,
        read_rows(args.rows),
        args.base_model,
        args.output,
        on_progress=progress,
        resume_from=args.resume_from,
    )
    if rank == 0:
        out = Path(args.output) / "result.json"
        out.write_text(json.dumps(dataclasses.asdict(result), indent=1, default=str))
    print(f"rank {rank} finished: {result.status}", flush=True)
    from training.core import distributed as D

    D.shutdown(D.init_distributed(config.device, config.distributed_strategy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
