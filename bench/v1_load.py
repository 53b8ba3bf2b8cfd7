"""Load benchmark of `/v1/chat/completions`: is the site still responsive while long answers
are generated? Prints figures.

    python bench/v1_load.py [--callers 8] [--max-tokens 256] [--worker-concurrency 1]
        [--threads 4] [--waiting-per-process 3]

Target (the issue): `/healthz` p99 under 100 ms while 8 long generations run.

What it does, all on 127.0.0.1 with a temporary VAR_DIR, SQLite and the filesystem broker:
1. Migrates a fresh database, creates a user with an API token and the bundled SmolLM2
   contestant (greedy; its safetensors copy must already be in MODEL_CACHE_DIR, as
   `manage.py prepare_models` leaves it).
2. Starts gunicorn as `scripts/serve.sh` does (2 workers x --threads threads) and one Celery
   worker on the `generate` queue. With the defaults each process lets 3 `/v1` calls wait and
   refuses more with 503; `--threads 8 --waiting-per-process 6` lets all 8 callers wait at
   once and still keeps two threads per process for `/healthz`.
3. --callers threads each send one `/v1/chat/completions` asking for --max-tokens tokens
   (one of them with `stream: true`), while another thread reads `/healthz` every 50 ms.
4. Prints the /healthz latencies during the generations (p50, p99, max), each answer's time
   and tokens, the tokens/s of the worker, and the resident memory of the gunicorn processes
   (a web process that loaded a model would hold hundreds of MB more).
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _stack import ROOT, Server, embedded_env, generate_worker  # bench/ is on sys.path

PROMPT = "Write a long story about a lighthouse keeper and the sea."


def _setup(env: dict) -> str:
    code = (
        "from django.contrib.auth import get_user_model;"
        "from rest_framework.authtoken.models import Token;"
        "from arena.services import contestant_create;"
        "u=get_user_model().objects.create_user('bench', password='pw-bench-123');"
        "contestant_create(name='smollm2', display_name='SmolLM2', backend='smollm2',"
        " temperature=0.0, max_new_tokens=512);"
        "print(Token.objects.create(user=u).key)"
    )
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [*run, "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def _post(port: int, token: str, body: dict) -> tuple[int, dict | str, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
    response = conn.getresponse()
    raw = response.read().decode()
    elapsed = time.monotonic() - started
    if body.get("stream"):
        return response.status, raw, elapsed
    return response.status, json.loads(raw), elapsed


def _probe(port: int, stop: threading.Event, samples: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        started = time.monotonic()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        samples.append(time.monotonic() - started)
        stop.wait(0.05)


def _rss_mb(pid: int) -> float:
    total = 0.0
    pids = [pid] + [int(p) for p in _children(pid)]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def _children(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _load(port: int, token: str, args) -> None:
    results: list = [None] * args.callers

    def call(i: int) -> None:
        body = {
            "model": "smollm2",
            "messages": [{"role": "user", "content": f"{PROMPT} ({i})"}],
            "max_tokens": args.max_tokens,
            "stream": i == 0,
        }
        results[i] = _post(port, token, body)

    samples: list[float] = []
    stop = threading.Event()
    probe = threading.Thread(target=_probe, args=(port, stop, samples))
    probe.start()
    started = time.monotonic()
    callers = [threading.Thread(target=call, args=(i,)) for i in range(args.callers)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    wall = time.monotonic() - started
    stop.set()
    probe.join()
    tokens = 0
    for i, (code, body, elapsed) in enumerate(results):
        if isinstance(body, dict) and code == 200:
            tokens += body["usage"]["completion_tokens"]
            print(f"answer {i}: HTTP {code} in {elapsed:.1f} s, {body['usage']}")
        elif isinstance(body, str):
            events = body.count("data: ")
            print(f"answer {i}: HTTP {code} in {elapsed:.1f} s, {events} events (stream)")
        else:
            print(f"answer {i}: HTTP {code} in {elapsed:.1f} s, {body.get('error')}")
    ms = [s * 1000 for s in samples]
    print(
        f"healthz during generation: n={len(ms)} p50 {_percentile(ms, 0.5):.1f} ms "
        f"p99 {_percentile(ms, 0.99):.1f} ms max {max(ms):.1f} ms"
    )
    print(f"all answers in {wall:.1f} s; {tokens / wall:.1f} tok/s (non-streamed answers)")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--worker-concurrency", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn threads per process (WEB_THREADS)"
    )
    parser.add_argument(
        "--waiting-per-process",
        type=int,
        default=None,
        help="V1_WAITING_PER_PROCESS (default: the setting's, 3); keep it under --threads",
    )
    return parser.parse_args()


def _env(var: Path, args: argparse.Namespace) -> dict[str, str]:
    env = embedded_env(var)
    if args.waiting_per_process is not None:
        env["V1_WAITING_PER_PROCESS"] = str(args.waiting_per_process)
    return env


def main() -> None:
    # Stopped by `timeout` or Ctrl-C: still stop the server and the worker.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    args = _parse_args()
    var = Path(tempfile.mkdtemp(prefix="v1-load-"))
    env = _env(var, args)
    print(
        f"gunicorn 2 x {args.threads} threads, {env.get('V1_WAITING_PER_PROCESS', 3)} waiting "
        f"/v1 calls per process, generate worker concurrency {args.worker_concurrency}"
    )
    token = _setup(env)
    # Calls wait for a whole answer: gunicorn's timeout must outlast the longest.
    web = Server("gthread", workers=2, threads=args.threads, timeout_s=900)
    worker = generate_worker(env, args.worker_concurrency)
    try:
        web.start(env, var)
        print(f"gunicorn before: {_rss_mb(web.proc.pid):.0f} MB resident (all its processes)")
        _load(web.port, token, args)
        print(f"gunicorn after: {_rss_mb(web.proc.pid):.0f} MB resident (all its processes)")
    finally:
        web.stop()
        worker.terminate()
        worker.wait(timeout=60)


if __name__ == "__main__":
    main()
