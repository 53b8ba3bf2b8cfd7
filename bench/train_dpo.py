"""DPO throughput: our trainer against TRL's DPOTrainer on the same model, data and batch order.

Default: a tiny random Llama, 2,000 synthetic pairs, batch 16, max length 128, one epoch, fp32,
one torch thread. Our time counts the reference pass (computed once, not read from the cache)
plus the training loop; TRL's is `train()`, which scores the reference model on every step.
Neither counts tokenisation or model loading.

    python bench/train_dpo.py
    python bench/train_dpo.py --device cuda --model /path/to/SmolLM2-135M-Instruct
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
    from training.core.dpo import DPOConfig, train_dpo

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
    m = result.metrics
    print(
        f"ours: reference pass {m['reference_runtime_s']:.2f} s, "
        f"training {m['train_runtime_s']:.2f} s, peak GPU {gpu_peak_gib():.2f} GiB"
    )
    seconds = m["reference_runtime_s"] + m["train_runtime_s"]
    return ours_figures(result, seconds, loss_window(len(rows), args.batch_size))


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
    return time_trl(trainer)


def main() -> None:
    args = parse_args(__doc__)
    model_path, tokenizer, rows = setup(args)
    from training.core.data import tokenize_pairs

    lr = args.lr or 5e-5
    compare(
        "dpo",
        args,
        rows,
        tokenize_pairs(tokenizer, rows, args.max_length),
        lambda rows, work: run_ours(args, model_path, rows, lr, work),
        lambda rows, work: run_trl(args, model_path, tokenizer, rows, lr, work),
    )


if __name__ == "__main__":
    main()
