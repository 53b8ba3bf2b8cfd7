"""Load benchmark of the live arena: several people start battles at once on the demo model.
How long until each side's first words appear, until both answers are complete, and how many
tokens per second the generation workers write, against a plain `transformers` `generate` loop
answering the same prompts one by one in this process. Prints figures.

    python bench/generation_load.py [--users 8] [--max-tokens 64] [--slots 16]

Targets (the issue): ratio >= 2 on a 2-core CPU; first token p95 under 5 s.

What it does, all on 127.0.0.1 with a temporary VAR_DIR, SQLite and the filesystem broker:
1. Migrates a fresh database, creates --users people with API tokens and two greedy SmolLM2
   contestants with different system prompts (its safetensors copy must already be in
   MODEL_CACHE_DIR, as `manage.py prepare_models` leaves it).
2. Starts gunicorn as `scripts/serve.sh` does and a `generate` worker as it does: one process
   with all cores' torch threads and --slots task threads (`GENERATION_BATCH_SIZE`), whose
   answers are written together (`arena.batching`); one warm-up battle loads the model.
3. Each person starts a battle through `POST /api/battles/` at the same moment and polls it
   every --poll s (the battle page reads it every 1 s): a side's first token is the first poll
   that shows text (the worker stores it every `GENERATION_PARTIAL_EVERY_S`, 0.3 s).
4. The reference: the same 2 x --users conversations answered one after another by
   `model.generate` in this process with all cores' threads, greedy, --max-tokens each.

The last line: `generation: ours T tok/s, sequential S tok/s, ratio R, first token p50 A s
p95 B s`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _stack import ROOT, Server, embedded_env, generate_worker  # bench/ is on sys.path

PROMPTS = [
    "Write a short poem about the sea.",
    "Explain what a hash table is.",
    "Give three tips for a job interview.",
    "What causes the seasons on Earth?",
    "Describe a cat to someone who has never seen one.",
    "How do I make a cup of tea?",
    "Why is the sky blue?",
    "Name three uses of a paperclip.",
]
SYSTEMS = {"smollm2-a": "You are a helpful assistant.", "smollm2-b": "Answer briefly and clearly."}
FINISHED = {"succeeded", "failed", "cancelled"}


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--poll", type=float, default=0.25, help="seconds between two reads of a battle"
    )
    parser.add_argument("--slots", type=int, default=16, help="GENERATION_BATCH_SIZE")
    return parser.parse_args()


def _manage(env: dict, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def _setup(env: dict, args: argparse.Namespace) -> list[str]:
    """A fresh database: the contestants and --users people; returns their tokens."""
    _manage(env, "migrate", "-v0")
    code = (
        "import json;"
        "from django.contrib.auth import get_user_model;"
        "from rest_framework.authtoken.models import Token;"
        "from arena.services import contestant_create;"
        f"systems={SYSTEMS!r};"
        "[contestant_create(name=n, display_name=n, backend='smollm2', temperature=0.0,"
        f" max_new_tokens={args.max_tokens}, system_prompt=s) for n, s in systems.items()];"
        "users=[get_user_model().objects.create_user(f'user{i}', password='pw-bench-123')"
        f" for i in range({args.users} + 1)];"
        "print(json.dumps([Token.objects.create(user=u).key for u in users]))"
    )
    return json.loads(_manage(env, "shell", "-c", code))


def _battle(base: str, token: str, prompt: str, record: dict, poll: float) -> None:
    """Start a battle and poll it until both sides are finished; `record` gets the times."""
    import requests

    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    created = requests.post(f"{base}/api/battles/", json={"prompt": prompt}, headers=headers)
    created.raise_for_status()
    url, first = f"{base}/api/battles/{created.json()['id']}/", {}
    while True:
        sides = requests.get(url, headers=headers, timeout=60).json()["turns"][-1]
        now = time.monotonic() - started
        for side in ("a", "b"):
            if side not in first and (sides[side]["output"] or sides[side]["status"] in FINISHED):
                first[side] = now
        if all(sides[side]["status"] in FINISHED for side in ("a", "b")):
            record.update(first=list(first.values()), done=now, ok=_ok(sides))
            return
        time.sleep(poll)


def _ok(sides: dict) -> bool:
    return all(sides[side]["status"] == "succeeded" for side in ("a", "b"))


def _load(base: str, tokens: list[str], poll: float) -> tuple[list[dict], float]:
    records = [{} for _ in tokens]
    threads = [
        threading.Thread(
            target=_battle, args=(base, t, PROMPTS[i % len(PROMPTS)], records[i], poll)
        )
        for i, t in enumerate(tokens)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records, time.monotonic() - started


def _written(env: dict) -> int:
    """Tokens the workers wrote for the measured battles (user0's warm-up left out)."""
    code = (
        "from django.db.models import Sum; from arena.models import Generation;"
        "print(Generation.objects.exclude(requested_by__username='user0')"
        ".aggregate(n=Sum('completion_tokens'))['n'] or 0)"
    )
    return int(_manage(env, "shell", "-c", code))


def _sequential(env: dict, args: argparse.Namespace) -> tuple[int, float]:
    """The same conversations answered one by one by `model.generate`: (tokens, seconds)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from arena.backends import smollm2_folder

    torch.set_num_threads(os.cpu_count() or 1)
    folder = smollm2_folder(env["MODEL_CACHE_DIR"])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    conversations = [
        [{"role": "system", "content": system}, {"role": "user", "content": PROMPTS[i % 8]}]
        for i in range(args.users)
        for system in SYSTEMS.values()
    ]
    tokens, started = 0, time.monotonic()
    for messages in conversations:
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=args.max_tokens, do_sample=False)
        tokens += out.shape[1] - ids.shape[1]
    return tokens, time.monotonic() - started


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _env(var: Path, args: argparse.Namespace) -> dict[str, str]:
    cores = os.cpu_count() or 1
    return embedded_env(
        var,
        ARENA_BATTLES_PER_MINUTE="0",  # every person here shares 127.0.0.1
        TORCH_NUM_THREADS=str(cores),
        DJANGO_SETTINGS_MODULE="config.settings",
    )


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # `timeout` still stops the stack
    args = _parse_args()
    var = Path(tempfile.mkdtemp(prefix="generation-load-"))
    env = _env(var, args)
    tokens = _setup(env, args)
    threads = env["TORCH_NUM_THREADS"]
    print(f"{args.users} people, 2 contestants, {args.max_tokens} tokens at most per answer, "
          f"one generation process: {args.slots} slots, {threads} torch threads")  # fmt: skip
    web = Server("gthread", workers=2, threads=4)
    worker = generate_worker(env, args.slots)
    try:
        web.start(env, var)
        base = f"http://127.0.0.1:{web.port}"
        _load(base, tokens[:1], args.poll)  # loads the model in the worker
        records, wall = _load(base, tokens[1:], args.poll)
        written = _written(env)
    finally:
        web.stop()
        worker.terminate()
        worker.wait(timeout=60)
    firsts = [t for r in records for t in r["first"]]
    done = [r["done"] for r in records]
    failed = sum(not r["ok"] for r in records)
    print(f"both answers complete: p50 {_percentile(done, 0.5):.1f} s, max {max(done):.1f} s; "
          f"{written} tokens in {wall:.1f} s; battles with a failed side: {failed}")  # fmt: skip
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    seq_tokens, seq_s = _sequential(env, args)
    ours, sequential = written / wall, seq_tokens / seq_s
    print(f"sequential: {seq_tokens} tokens in {seq_s:.1f} s")
    print(
        f"generation: ours {ours:.1f} tok/s, sequential {sequential:.1f} tok/s, "
        f"ratio {ours / sequential:.2f}, first token p50 {_percentile(firsts, 0.5):.1f} s "
        f"p95 {_percentile(firsts, 0.95):.1f} s"
    )


if __name__ == "__main__":
    main()
