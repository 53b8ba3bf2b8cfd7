"""Does the shape of an HH transcript matter to a reward model trained on it? The same real
Anthropic HH pairs, as raw `Human:/Assistant:` text and as chat messages under SmolLM2's own
template, each train one reward model with `training/core` (same seed, steps and settings);
each is scored on the same held-out pairs, in the shape it was trained on. Prints figures.

    python bench/hh_format.py [--train-pairs 720] [--heldout-pairs 400] [--epochs 1]

The pairs are split as `bench/flywheel.py` splits them (by the hash of the first user turn):
part B trains, part C is held out, so no held-out prompt was seen in training. The raw text
is HH's own (`\\n\\nHuman: ...\\n\\nAssistant:` as the prompt, ` answer` as the completion);
the platform imports HH as chat messages. The last line:

    hh format: raw text A.AAA [L, U], chat messages B.BBB [L, U] on N held-out pairs; S s
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _stack import ROOT, embedded_env  # bench/ is on sys.path


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-pairs", type=int, default=720, help="pairs of part B")
    p.add_argument("--heldout-pairs", type=int, default=400, help="pairs of part C")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-length", type=int, default=320)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--model-cache", default=str(ROOT / "var" / "models"))
    return p.parse_args()


def as_chat(pair: tuple) -> dict:
    prompt, chosen, rejected = pair
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def as_text(pair: tuple) -> dict:
    from annotation.exports.formats import hh_render

    prompt, chosen, rejected = pair
    return {
        "prompt": hh_render(prompt) + "\n\nAssistant:",
        "chosen": f" {chosen}",
        "rejected": f" {rejected}",
    }


def accuracy(model_dir: str, rows: list[dict]) -> tuple[float, float, float]:
    """Share of held-out pairs whose chosen answer scores above the rejected one, Wilson 95%."""
    from flywheel import pair_accuracy

    from training.core.common import load_reward_model, load_tokenizer
    from training.core.reward import score

    tokenizer = load_tokenizer(model_dir)
    model = load_reward_model(model_dir, pad_token_id=tokenizer.pad_token_id).eval()
    chosen = score(model, tokenizer, [(r["prompt"], r["chosen"]) for r in rows], batch_size=8)
    rejected = score(model, tokenizer, [(r["prompt"], r["rejected"]) for r in rows], batch_size=8)
    return pair_accuracy(chosen, rejected)


def train_and_score(args, name: str, train: list[dict], heldout: list[dict], work: Path) -> tuple:
    from arena.backends import smollm2_folder
    from training.core.reward import RewardConfig, train_reward

    config = RewardConfig(
        num_epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=8,
        max_length=args.max_length,
        eval_fraction=0.0,
        num_threads=os.cpu_count() or 1,
        seed=0,
    )
    started = time.monotonic()
    result = train_reward(config, train, smollm2_folder(args.model_cache), work / name)
    trained = time.monotonic() - started
    figures = accuracy(result.model_dir, heldout)
    print(f"{name}: {len(train)} pairs, {result.step} steps, train loss "
          f"{result.metrics.get('train_loss', float('nan')):.3f}, {trained:.0f} s; held-out "
          f"accuracy {figures[0]:.3f} [{figures[1]:.3f}, {figures[2]:.3f}]")  # fmt: skip
    return figures


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="hh-format-"))
    os.environ.update(embedded_env(work, DJANGO_SETTINGS_MODULE="config.settings"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import demo_loop
    from flywheel import split_hh

    started = time.monotonic()
    parts = split_hh(Path(demo_loop.HH_FILE))
    train, heldout = parts["B"].pairs[: args.train_pairs], parts["C"].pairs[: args.heldout_pairs]
    text, chat = (
        train_and_score(args, name, [shape(p) for p in train], [shape(p) for p in heldout], work)
        for name, shape in (("raw text", as_text), ("chat messages", as_chat))
    )
    print(
        f"hh format: raw text {text[0]:.3f} [{text[1]:.3f}, {text[2]:.3f}], chat messages "
        f"{chat[0]:.3f} [{chat[1]:.3f}, {chat[2]:.3f}] on {len(heldout)} held-out pairs; "
        f"{time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
