"""DPO throughput: our trainer against TRL's DPOTrainer on the same model, data and batch order.

Default: a tiny random Llama, 2,000 synthetic pairs, batch 16, max length 128, one epoch, fp32,
one torch thread. Our time counts the reference pass (computed once, not read from the cache)
plus the training loop; TRL's is `train()`, which scores the reference model on every step.
Neither counts tokenisation or model loading.

    python bench/train_dpo.py
    python bench/train_dpo.py --device cuda --model /path/to/SmolLM2-135M-Instruct
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _training import (
    Timer,
    batch_order,
    best_of,
    gpu_peak_gib,
    gpu_peak_reset,
    last_window_mean,
    load_for_trl,
    loss_window,
    ordered_rows,
    parse_args,
    quiet,
    setup,
    trl_common_args,
    trl_final_loss,
)


def run_ours(args, model_path, rows, lr, work: Path) -> tuple[float, float, float]:
    from training.core.dpo import DPOConfig, train_dpo

    window = loss_window(len(rows), args.batch_size)
    cfg = DPOConfig(
        batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=lr,
        seed=args.seed,
        num_threads=args.threads if args.device == "cpu" else None,
        device=args.device,
        cache_dir=str(work / "ref-cache"),
    )
    gpu_peak_reset()
    result = train_dpo(cfg, rows, model_path, work)
    seconds = result.metrics["reference_runtime_s"] + result.metrics["train_runtime_s"]
    print(
        f"ours: reference pass {result.metrics['reference_runtime_s']:.2f} s, "
        f"training {result.metrics['train_runtime_s']:.2f} s, peak GPU {gpu_peak_gib():.2f} GiB"
    )
    return (
        seconds,
        last_window_mean(result.history, window),
        result.metrics["train_loss"],
    )


def run_trl(args, model_path, tokenizer, rows, lr, work: Path) -> tuple[float, float]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    window = loss_window(len(rows), args.batch_size)
    cfg = DPOConfig(**trl_common_args(args, work / "trl", lr, window))
    gguf = model_path.endswith(".gguf")
    trainer = DPOTrainer(
        model=load_for_trl(model_path),
        ref_model=load_for_trl(model_path) if gguf else None,
        args=cfg,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    quiet(trainer)
    gpu_peak_reset()
    with Timer() as t:
        trainer.train()
    print(f"trl: training {t.seconds:.2f} s, peak GPU {gpu_peak_gib():.2f} GiB")
    return t.seconds, trl_final_loss(trainer)


def main() -> None:
    args = parse_args(__doc__)
    model_path, tokenizer, rows = setup(args)
    from training.core.data import tokenize_pairs

    lr = args.lr or 5e-5
    examples = tokenize_pairs(tokenizer, rows, args.max_length)
    trl_rows = ordered_rows(rows, batch_order(examples, args.batch_size, args.seed))
    tokens = sum(2 * len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in examples)
    work = Path(tempfile.mkdtemp(prefix="bench-dpo-"))
    runs = iter(range(1000))
    try:
        (ours_s, ours_loss, ours_mean), (trl_s, trl_loss) = best_of(
            args.repeats,
            lambda: run_ours(args, model_path, rows, lr, work / f"{next(runs)}"),
            None
            if args.skip_trl
            else lambda: run_trl(args, model_path, tokenizer, trl_rows, lr, work / f"{next(runs)}"),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(rows)
    print(
        f"tokens/s: ours {tokens / ours_s:.0f}, trl {tokens / trl_s:.0f}; "
        f"epoch-mean loss ours {ours_mean:.4f}"
    )
    print(
        f"dpo: ours {n / ours_s:.1f} pairs/s, trl {n / trl_s:.1f} pairs/s, "
        f"ratio {trl_s / ours_s:.2f}, final loss ours {ours_loss:.4f} trl {trl_loss:.4f}"
    )


if __name__ == "__main__":
    main()
