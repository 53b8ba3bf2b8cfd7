"""Command line for the trainers, and the entry point `torchrun` starts on every rank.

    python -m training.core.launch dpo --config cfg.json --rows rows.jsonl \
        --base-model /models/base --output /runs/42
    torchrun --nproc_per_node 2 -m training.core.launch dpo ...

`--config` holds the fields of the trainer's config dataclass (LoRA settings as a nested
object). Rank 0 prints one `@progress {json}` line per logged step (step, total, metrics),
stops at the next step once a file named `CANCEL` appears in the output folder, and writes
`result.json` (the `TrainResult`) there.

`train_under_torchrun` is the other side: it starts `torchrun` with this entry point from a
process that wants a trainer's usual call (progress callback, cancellation check, a
`TrainResult` back), which is how a platform worker runs one job on several GPUs or machines.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.core.common import TrainResult
from training.core.config import LoraSettings

# Each kind of run: the module holding its trainer, its config class and its train function.
# Imported on demand, so that a process importing this table loads no trainer it does not run.
TRAINER_TABLE: dict[str, tuple[str, str, str]] = {
    "sft": ("training.core.sft", "SFTConfig", "train_sft"),
    "reward": ("training.core.reward", "RewardConfig", "train_reward"),
    "dpo": ("training.core.dpo", "DPOConfig", "train_dpo"),
    "ppo": ("training.core.ppo", "PPOConfig", "train_ppo"),
    "grpo": ("training.core.grpo", "GRPOConfig", "train_grpo"),
}
TRAINERS = tuple(TRAINER_TABLE)
PROGRESS_PREFIX = "@progress "
CANCEL_FILE = "CANCEL"


def trainer(kind: str) -> tuple[type, Any]:
    """The config class and train function of a kind of run; an unknown kind raises."""
    try:
        module, config_name, train_name = TRAINER_TABLE[kind]
    except KeyError:
        raise ValueError(
            f"unknown trainer {kind!r}; expected one of {', '.join(TRAINERS)}"
        ) from None
    loaded = importlib.import_module(module)
    return getattr(loaded, config_name), getattr(loaded, train_name)


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
    cls, train = trainer(args.kind)
    values = json.loads(Path(args.config).read_text()) if args.config else {}
    config = build_config(cls, values)
    rank = int(os.environ.get("RANK", "0"))

    cancel_file = Path(args.output) / CANCEL_FILE

    def progress(step: int, total: int, metrics: dict[str, float]) -> None:
        if rank == 0:
            line = json.dumps({"step": step, "total": total, "metrics": metrics}, default=float)
            print(PROGRESS_PREFIX + line, flush=True)

    result = train(
        config,
        read_rows(args.rows),
        args.base_model,
        args.output,
        on_progress=progress,
        should_cancel=cancel_file.exists,
        resume_from=args.resume_from,
    )
    if rank == 0:
        out = Path(args.output) / "result.json"
        out.write_text(json.dumps(dataclasses.asdict(result), indent=1, default=str))
    print(f"rank {rank} finished: {result.status}", flush=True)
    from training.core import distributed as D

    D.shutdown(D.init_distributed(config.device, config.distributed_strategy))
    return 0


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux for a SIGTERM when the process that started this one dies, so that a killed
    worker does not leave a training job running unwatched. Called in the child itself (a
    `preexec_fn` would run between fork and exec of a process with live threads)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def run_guarded(argv: list[str]) -> None:
    """`python -m training.core.launch --guard PARENT_PID MODULE ARGS...`: run MODULE as
    __main__ in this process once it is tied to its parent's life."""
    import runpy

    parent, module, *rest = argv
    die_with_parent(int(parent))
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def train_under_torchrun(
    kind: str,
    config: Any,
    rows: list[dict[str, Any]],
    base_model: str | Path,
    output: str | Path,
    *,
    processes: int,
    on_progress: Callable[[int, int, dict[str, float]], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    resume_from: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    torchrun_args: Sequence[str] = ("--standalone",),
    poll_s: float = 1.0,
) -> TrainResult:
    """Train with `processes` processes per node under torchrun and return rank 0's result.

    The config and rows are written next to the output; every line the ranks print goes to
    `log`, progress lines to `on_progress`; when `should_cancel` turns true the ranks are asked
    to stop at their next step (they save a checkpoint and report "cancelled"). A job that
    exits with an error raises RuntimeError with the end of its output."""
    if kind not in TRAINERS:
        raise ValueError(f"unknown trainer {kind!r}; expected one of {', '.join(TRAINERS)}")
    if processes < 1:
        raise ValueError("processes must be at least 1")
    output = Path(output)
    rank_args = _write_job(kind, config, rows, base_model, output, resume_from)
    command = [
        *(sys.executable, "-m", "training.core.launch", "--guard", str(os.getpid())),
        *("torch.distributed.run", *torchrun_args, "--nproc_per_node", str(processes)),
        *("-m", "training.core.launch", *rank_args),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH", "")])),
    }
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=_ROOT,
        start_new_session=True,  # its own process group: cancelled or failed, all of it goes
    )
    try:
        tail = _relay(proc, output, on_progress, should_cancel, log, poll_s)
    except BaseException:  # the caller failed or was interrupted: take the job down with it
        _stop_group(proc)
        raise
    code = proc.wait()
    result_file = output / "result.json"
    if code != 0 or not result_file.exists():
        raise RuntimeError(f"torchrun exited with code {code}: " + " | ".join(tail[-8:]))
    return TrainResult(**json.loads(result_file.read_text()))


def _write_job(kind, config, rows, base_model, output: Path, resume_from) -> list[str]:
    """Write the config and rows next to `output` for the ranks to read; return their
    arguments."""
    job = output / "torchrun"
    job.mkdir(parents=True, exist_ok=True)
    (output / CANCEL_FILE).unlink(missing_ok=True)
    (output / "result.json").unlink(missing_ok=True)
    config_file, rows_file = job / "config.json", job / "rows.jsonl"
    config_file.write_text(json.dumps(dataclasses.asdict(config), default=str))
    with rows_file.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    rank_args = [kind, "--config", str(config_file), "--rows", str(rows_file)]
    rank_args += ["--base-model", str(base_model), "--output", str(output)]
    if resume_from:
        rank_args += ["--resume-from", str(resume_from)]
    return rank_args


def _relay(
    proc: subprocess.Popen,
    output: Path,
    on_progress: Callable[[int, int, dict[str, float]], None] | None,
    should_cancel: Callable[[], bool] | None,
    log: Callable[[str], None] | None,
    poll_s: float,
) -> list[str]:
    """Pass the job's progress and log lines on until its output ends, and turn a cancel
    request into the file the ranks look for; returns the last lines it printed."""
    lines: queue.Queue[str | None] = queue.Queue()
    tail: collections.deque[str] = collections.deque(maxlen=40)

    def read() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    cancel_sent = False
    while True:
        try:
            line = lines.get(timeout=poll_s)
        except queue.Empty:
            line = ""
        if line is None:
            break
        if line.startswith(PROGRESS_PREFIX):
            event = json.loads(line[len(PROGRESS_PREFIX) :])
            if on_progress is not None:
                on_progress(event["step"], event["total"], event["metrics"])
        elif line:
            tail.append(line)
            if log is not None:
                log(line)
        if not cancel_sent and should_cancel is not None and should_cancel():
            (output / CANCEL_FILE).touch()
            cancel_sent = True
    reader.join(timeout=5)
    return list(tail)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the job's whole process group (torchrun and its ranks), SIGKILL after 30 s."""
    import signal

    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


_ROOT = str(Path(__file__).resolve().parents[2])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--guard"]:
        run_guarded(sys.argv[2:])
    else:
        sys.exit(main())
