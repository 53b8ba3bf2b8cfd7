"""Shared set-up of the training benchmarks: model, data, batch order, TRL arguments."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUT = Path(__file__).resolve().parent / "out"


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--pairs", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--model", default=None, help="HF folder or .gguf file (default: tiny Llama)")
    p.add_argument("--skip-trl", action="store_true")
    p.add_argument("--repeats", type=int, default=1, help="keep the best of N timings of each")
    return p.parse_args()


def setup(args: argparse.Namespace) -> tuple[str, Any, list[dict[str, Any]]]:
    """(model path, tokenizer, rows); builds the tiny Llama when no model is given.

    Rows are synthetic pairs of up to about `max_length` tokens; with another tokenizer the
    pairs that would not fit are left out, so that neither trainer truncates or drops any.
    """
    import torch
    import transformers

    from training.core.common import configure_threads, load_tokenizer
    from training.core.data import tokenize_pairs
    from training.core.tiny import build_tiny_model, synthetic_pairs

    transformers.logging.set_verbosity_error()
    # TRL's configs still pass transformers' renamed checkpointing options.
    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.utils.logging.disable_progress_bar()
    configure_threads(args.threads if args.device == "cpu" else None)
    torch.manual_seed(args.seed)
    if args.model:
        model = args.model
    else:
        model = str(OUT / "tiny-llama")
        if not (Path(model) / "config.json").exists():
            build_tiny_model(model, seed=args.seed)
    tokenizer = load_tokenizer(model)
    # The tiny word-level tokenizer spends one token per word; subword tokenizers about three
    # on these made-up words.
    words = args.max_length - 8 if not args.model else max(8, args.max_length // 3)
    rows = synthetic_pairs(args.pairs, seed=args.seed, max_words=words)
    examples = tokenize_pairs(tokenizer, rows, None)
    rows = [r for r, e in zip(rows, examples, strict=True) if e.length <= args.max_length]
    if len(rows) < args.pairs:
        print(f"{args.pairs - len(rows)} pairs longer than {args.max_length} tokens left out")
    return model, tokenizer, rows


def load_for_trl(path: str, reward: bool = False) -> Any:
    """TRL loads a folder by name; a GGUF file is loaded (dequantised) here instead."""
    if not path.endswith(".gguf"):
        return path
    from training.core.common import load_causal_lm, load_reward_model

    return load_reward_model(path) if reward else load_causal_lm(path)


def ordered_rows(rows: list[dict[str, Any]], order: list[int]) -> list[dict[str, Any]]:
    """Rows in the order our trainer visits them, so TRL (sequential sampling) sees the very
    same batches in the same order."""
    return [rows[i] for i in order]


def loss_window(rows: int, batch_size: int) -> int:
    """Steps averaged into the reported final loss: TRL logs the mean loss of each window of
    `logging_steps`, so the window must divide the step count (25 for the default run)."""
    steps = -(-rows // batch_size)
    return 25 if steps % 25 == 0 else steps


def trl_common_args(args: argparse.Namespace, out: Path, lr: float, window: int) -> dict[str, Any]:
    cuda = args.device == "cuda"
    return {
        "output_dir": str(out),
        "per_device_train_batch_size": args.batch_size,
        "num_train_epochs": 1,
        "learning_rate": lr,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "seed": args.seed,
        "bf16": cuda,
        "gradient_checkpointing": False,
        "logging_steps": window,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "train_sampling_strategy": "sequential",
        "dataloader_num_workers": 0,
        "use_cpu": not cuda,
        "max_length": args.max_length,
    }


def last_window_mean(history: list[dict[str, float]], window: int) -> float:
    losses = [h["loss"] for h in history if "loss" in h]
    tail = losses[-window:]
    return sum(tail) / len(tail)


def trl_final_loss(trainer: Any) -> float:
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return float(logged[-1])


class Timer:
    def __enter__(self) -> Timer:
        self._sync()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.start

    @staticmethod
    def _sync() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def gpu_peak_reset() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def batch_order(examples: list[Any], batch_size: int, seed: int) -> list[int]:
    """The order in which our trainer visits the rows in epoch 0 (pairs packed in one row).

    TRL, reading the rows in this order with sequential sampling, gets the very same batches
    when every batch is full (true for the default 2,000 pairs in batches of 16).
    """
    from training.core.batching import make_batches, pair_lengths

    batches = make_batches(pair_lengths(examples, packed=True), batch_size, seed=seed, epoch=0)
    return [i for b in batches for i in b]


def best_of(repeats: int, ours: Any, trl: Any | None) -> tuple[tuple, tuple]:
    """Run ours and TRL alternately; keep each one's fastest run (the first tuple element)."""
    best_ours = best_trl = None
    for _ in range(max(1, repeats)):
        o = ours()
        best_ours = o if best_ours is None or o[0] < best_ours[0] else best_ours
        if trl is not None:
            t = trl()
            best_trl = t if best_trl is None or t[0] < best_trl[0] else best_trl
    return best_ours, best_trl or (float("nan"), float("nan"))


def quiet(trainer: Any) -> None:
    """No per-log printing from TRL's trainer: the losses are read from its log history."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


# What a benchmark passes to `compare`: ours(rows, work) -> (seconds, final loss, epoch-mean
# loss); trl(rows in our batch order, work) -> (seconds, final loss).
OursFn = Callable[[list[dict[str, Any]], Path], tuple[float, float, float]]
TrlFn = Callable[[list[dict[str, Any]], Path], tuple[float, float]]


def time_trl(trainer: Any) -> tuple[float, float]:
    """Train TRL's trainer (quiet) and return (seconds, final loss)."""
    quiet(trainer)
    gpu_peak_reset()
    with Timer() as t:
        trainer.train()
    print(f"trl: training {t.seconds:.2f} s, peak GPU {gpu_peak_gib():.2f} GiB")
    return t.seconds, trl_final_loss(trainer)


def ours_figures(result: Any, seconds: float, window: int) -> tuple[float, float, float]:
    """(seconds, final loss, epoch-mean loss) of our trainer's result."""
    return seconds, last_window_mean(result.history, window), result.metrics["train_loss"]


def compare(
    name: str,
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    examples: list[Any],
    ours: OursFn,
    trl: TrlFn,
) -> None:
    """Time both trainers on the same rows and batch order (best of `--repeats`, alternating)
    and print the summary lines; the last is `<name>: ours A pairs/s, trl B pairs/s, ...`."""
    trl_rows = ordered_rows(rows, batch_order(examples, args.batch_size, args.seed))
    tokens = sum(2 * len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in examples)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    runs = iter(range(1000))
    try:
        (ours_s, ours_loss, ours_mean), (trl_s, trl_loss) = best_of(
            args.repeats,
            lambda: ours(rows, work / f"{next(runs)}"),
            None if args.skip_trl else lambda: trl(trl_rows, work / f"{next(runs)}"),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(rows)
    print(
        f"tokens/s: ours {tokens / ours_s:.0f}, trl {tokens / trl_s:.0f}; "
        f"epoch-mean loss ours {ours_mean:.4f}"
    )
    print(
        f"{name}: ours {n / ours_s:.1f} pairs/s, trl {n / trl_s:.1f} pairs/s, "
        f"ratio {trl_s / ours_s:.2f}, final loss ours {ours_loss:.4f} trl {trl_loss:.4f}"
    )
