"""Reward-model throughput: our trainer against TRL's RewardTrainer on the same model, data and
batch order.

Default: a tiny random Llama with a new scalar head (same seed, same initial weights for both),
2,000 synthetic pairs, batch 16, max length 128, one epoch, fp32, one torch thread, no held-out
split. Times cover the training loop only (not tokenisation or model loading).

    python bench/train_reward.py
    python bench/train_reward.py --device cuda --model /path/to/SmolLM2-135M-Instruct
"""

from __future__ import annotations

from pathlib import Path

from _training import (
    compare,
    gpu_peak_gib,
    gpu_peak_reset,
    load_for_trl,
    loss_window,
    ours_figures,
    parse_args,
    setup,
    time_trl,
    trl_common_args,
)


def run_ours(args, model_path, rows, lr, work: Path) -> tuple[float, float, float]:
    from training.core.reward import RewardConfig, train_reward

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
    seconds = result.metrics["train_runtime_s"]
    print(f"ours: training {seconds:.2f} s, peak GPU {gpu_peak_gib():.2f} GiB")
    return ours_figures(result, seconds, loss_window(len(rows), args.batch_size))


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
    return time_trl(trainer)


def main() -> None:
    args = parse_args(__doc__)
    model_path, tokenizer, rows = setup(args)
    from training.core.data import tokenize_reward_pairs

    lr = args.lr or 1e-4
    compare(
        "reward",
        args,
        rows,
        tokenize_reward_pairs(tokenizer, rows, args.max_length),
        lambda rows, work: run_ours(args, model_path, rows, lr, work),
        lambda rows, work: run_trl(args, model_path, tokenizer, rows, lr, work),
    )


if __name__ == "__main__":
    main()
