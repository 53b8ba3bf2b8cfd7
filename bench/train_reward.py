"""Reward-model throughput: our trainer against TRL's RewardTrainer on the same model, data and
batch order.

Default: a tiny random Llama with a new scalar head (same seed, same initial weights for both),
2,000 synthetic pairs, batch 16, max length 128, one epoch, fp32, one torch thread, no held-out
split. Times cover the training loop only (not tokenisation or model loading).

    python bench/train_reward.py
    python bench/train_reward.py --device cuda --model /path/to/SmolLM2-135M-Instruct
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
    from training.core.reward import RewardConfig, train_reward

    window = loss_window(len(rows), args.batch_size)
    cfg = RewardConfig(
        batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=lr,
        seed=args.seed,
        num_threads=args.threads if args.device == "cpu" else None,
        device=args.device,
        eval_fraction=0.0,
    )
    gpu_peak_reset()
    result = train_reward(cfg, rows, model_path, work)
    print(
        f"ours: training {result.metrics['train_runtime_s']:.2f} s, "
        f"peak GPU {gpu_peak_gib():.2f} GiB"
    )
    return (
        result.metrics["train_runtime_s"],
        last_window_mean(result.history, window),
        result.metrics["train_loss"],
    )


def run_trl(args, model_path, tokenizer, rows, lr, work: Path) -> tuple[float, float]:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    window = loss_window(len(rows), args.batch_size)
    cfg = RewardConfig(**trl_common_args(args, work / "trl", lr, window))
    trainer = RewardTrainer(
        model=load_for_trl(model_path, reward=True),
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
    from training.core.data import tokenize_reward_pairs

    lr = args.lr or 1e-4
    examples = tokenize_reward_pairs(tokenizer, rows, args.max_length)
    trl_rows = ordered_rows(rows, batch_order(examples, args.batch_size, args.seed))
    tokens = sum(2 * len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in examples)
    work = Path(tempfile.mkdtemp(prefix="bench-reward-"))
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
        f"reward: ours {n / ours_s:.1f} pairs/s, trl {n / trl_s:.1f} pairs/s, "
        f"ratio {trl_s / ours_s:.2f}, final loss ours {ours_loss:.4f} trl {trl_loss:.4f}"
    )


if __name__ == "__main__":
    main()
