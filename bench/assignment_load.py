"""Assignment under load: many annotators ask for work and submit it over HTTP at once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/annbench \\
        .venv/bin/python bench/assignment_load.py --items 100000 --annotators 32 --duration 60

Builds (or resets) a project of ranking items (K = 2, overlap 3) in the database named by
DATABASE_URL (created when missing), starts gunicorn on loopback unless --url is given, and runs
the annotators as client threads spread over a few processes, each with its own API token:
POST next task -> (think) -> POST the ranking -> again. With --think, annotators start at
random moments within the first think time. When the time is up it prints the
latency of "next task" and checks, in the database, that no item has more judgments than its
overlap, that no annotator judged an item twice, and that every judgment a client saw accepted
(HTTP 201) is stored.

--think 0 (the default) is a throughput test: 32 clients that never pause keep every worker
busy, and "next task" waits in line behind the other annotators' requests. --think 2 is still
ten times faster than a person ranking two answers, and shows the latency an annotator feels.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SLUG = "bench-assignment"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--overlap", type=int, default=3)
    p.add_argument("--annotators", type=int, default=32)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    p.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds an annotator spends on a task (0: submit at once)",
    )
    p.add_argument("--processes", type=int, default=4, help="client processes")
    p.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--url", default="", help="use a running server instead of starting one")
    return p.parse_args()


# --------------------------------------------------------------------------- database


def _ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in the URL when it is missing."""
    from urllib.parse import urlparse

    import psycopg

    parts = urlparse(url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("The benchmark is meant for PostgreSQL: set DATABASE_URL=postgres://...")
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
            conn.execute(f'create database "{name}"')


def _setup(args) -> tuple[list[str], int]:
    """Migrate, build or reset the project and the annotators; return their tokens."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import Assignment, Item, Project, Ranking
    from core.roles import user_role_grant

    call_command("migrate", verbosity=0)
    project, _ = Project.objects.get_or_create(
        slug=SLUG, defaults={"name": "Benchmark: assignment", "gold_rate": 0.0}
    )
    project.overlap, project.gold_rate, project.task_kinds = args.overlap, 0.0, ["ranking"]
    project.save()
    Ranking.objects.filter(project=project).delete()
    Assignment.objects.filter(item__project=project).delete()
    Item.objects.filter(project=project).update(taken=0, is_open=True)
    have = Item.objects.filter(project=project).count()
    if have < args.items:
        _build_items(project, args.items - have, start=have)
    # A freshly loaded table has no planner statistics until autovacuum gets to it; without them
    # PostgreSQL sorts the whole queue instead of walking it in id order.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE annotation_item, annotation_assignment, annotation_ranking, "
            "annotation_item_completions"
        )
    tokens = []
    for n in range(args.annotators):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-annotator-{n}")
        user_role_grant(user=user, role="annotator")
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return tokens, Item.objects.filter(project=project).count()


def _build_items(project, count: int, *, start: int, batch: int = 5000) -> None:
    from django.db import transaction

    from annotation.models import Completion, Item, Prompt

    through = Item.completions.through
    t0 = time.perf_counter()
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        with transaction.atomic():
            numbers = range(start + offset, start + offset + n)
            prompts = Prompt.objects.bulk_create(
                Prompt(
                    project=project,
                    messages=[{"role": "user", "content": f"Prompt {k}"}],
                    content_hash=f"bench-{k}",
                )
                for k in numbers
            )
            completions = Completion.objects.bulk_create(
                Completion(prompt=p, source="human", text=f"Answer {side} to {p.id}")
                for p in prompts
                for side in "xy"
            )
            items = Item.objects.bulk_create(
                Item(project=project, prompt=p, kind="ranking") for p in prompts
            )
            through.objects.bulk_create(
                through(item_id=item.id, completion_id=c.id)
                for k, item in enumerate(items)
                for c in completions[2 * k : 2 * k + 2]
            )
    print(f"built {count} items in {time.perf_counter() - t0:.1f} s", flush=True)


# --------------------------------------------------------------------------- server


def _start_server(args) -> subprocess.Popen:
    import requests

    env = {**os.environ, "DJANGO_DEBUG": "0", "LOG_LEVEL": "ERROR"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-b",
            f"127.0.0.1:{args.port}",
            "-w",
            str(args.workers),
            "-k",
            "gthread",
            "--threads",
            str(args.threads),
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{args.port}/healthz", timeout=1).ok:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("gunicorn did not start")


# --------------------------------------------------------------------------- clients


def _annotator(url: str, token: str, until: float, think: float, out: dict) -> None:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    rng = random.Random(token)
    if think:
        # Annotators arrive over the first think time, as people do, rather than all asking
        # in the same millisecond (a burst no team produces, measured as a queue).
        time.sleep(rng.uniform(0, think))
    while time.time() < until:
        t0 = time.perf_counter()
        r = session.post(f"{url}/api/annotation/projects/{SLUG}/tasks/next/", timeout=30)
        out["next_ms"].append((time.perf_counter() - t0) * 1000)
        if r.status_code == 204:
            break
        if r.status_code != 200:
            out["errors"].append(f"next {r.status_code}")
            continue
        task = r.json()
        if think:
            time.sleep(rng.expovariate(1 / think))
        order = rng.choice(["A > B", "B > A", "A = B"])
        t0 = time.perf_counter()
        r = session.post(
            f"{url}/api/annotation/tasks/{task['id']}/ranking/", json={"order": order}, timeout=30
        )
        out["submit_ms"].append((time.perf_counter() - t0) * 1000)
        if r.status_code == 201:
            out["accepted"].append(r.json()["id"])
        else:
            out["errors"].append(f"submit {r.status_code}")


def _client_process(url: str, tokens: list[str], until: float, think: float, queue) -> None:
    out = {"next_ms": [], "submit_ms": [], "accepted": [], "errors": []}
    threads = [
        threading.Thread(target=_annotator, args=(url, t, until, think, out)) for t in tokens
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(out)


def _load(args, url: str, tokens: list[str]) -> dict:
    until = time.time() + args.duration
    queue = mp.get_context("fork").Queue()
    groups = [tokens[k :: args.processes] for k in range(args.processes)]
    procs = [
        mp.get_context("fork").Process(
            target=_client_process, args=(url, g, until, args.think, queue)
        )
        for g in groups
        if g
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=args.duration + 120) for _ in procs]
    for p in procs:
        p.join()
    merged = {k: [v for r in results for v in r[k]] for k in results[0]}
    return merged


# --------------------------------------------------------------------------- checks


def _check(overlap: int, accepted: list[int]) -> dict:
    from django.db import connection
    from django.db.models import Count

    from annotation.models import Item, Ranking

    connection.close()  # a fresh connection after the fork
    rankings = Ranking.objects.filter(project__slug=SLUG)
    per_item = rankings.values("item_id").annotate(n=Count("id"))
    over = per_item.filter(n__gt=overlap).count()
    twice = (
        rankings.values("item_id", "annotator_id").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    stored = set(rankings.values_list("id", flat=True))
    lost = len(set(accepted) - stored)
    return {
        "rankings_stored": len(stored),
        "items_over_overlap": over,
        "judged_twice": twice,
        "lost": lost,
        "extra": len(stored - set(accepted)),
        "items_complete": per_item.filter(n=overlap).count(),
        "max_per_item": max((r["n"] for r in per_item), default=0),
        "items_taken_beyond_overlap": Item.objects.filter(
            project__slug=SLUG, taken__gt=overlap
        ).count(),
    }


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def main() -> None:
    args = _args()
    url_db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/annbench")
    os.environ["DATABASE_URL"] = url_db
    _ensure_database(url_db)
    tokens, items = _setup(args)
    server = None if args.url else _start_server(args)
    url = args.url or f"http://127.0.0.1:{args.port}"
    try:
        t0 = time.perf_counter()
        result = _load(args, url, tokens)
        elapsed = time.perf_counter() - t0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    checks = _check(args.overlap, result["accepted"])
    nxt, sub = result["next_ms"], result["submit_ms"]
    print(
        f"items {items}, overlap {args.overlap}, annotators {args.annotators}, "
        f"think {args.think} s, server {'external' if args.url else f'gunicorn {args.workers}x{args.threads}'}, "  # noqa: E501
        f"cpus {os.cpu_count()}"
    )
    print(
        f"ran {elapsed:.1f} s: {len(nxt)} next-task requests, {len(result['accepted'])} "
        f"judgments accepted ({len(result['accepted']) / elapsed:.0f}/s), "
        f"{len(result['errors'])} errors {sorted(set(result['errors']))[:5]}"
    )
    print(
        f"next task ms: p50 {_pct(nxt, 50):.1f}  p95 {_pct(nxt, 95):.1f}  "
        f"p99 {_pct(nxt, 99):.1f}  max {max(nxt):.1f}"
    )
    print(
        f"submit ms:    p50 {_pct(sub, 50):.1f}  p95 {_pct(sub, 95):.1f}  p99 {_pct(sub, 99):.1f}"
    )
    print("checks: " + ", ".join(f"{k} {v}" for k, v in checks.items()))
    ok = not (
        checks["items_over_overlap"] or checks["judged_twice"] or checks["lost"] or checks["extra"]
    )
    print("invariants hold" if ok else "INVARIANTS BROKEN")
    p95 = _pct(nxt, 95)
    print(
        f"assignment_load: next-task p95 {p95:.1f} ms (target 50 ms) with {args.annotators} "
        f"annotators thinking {args.think} s on average: {'PASS' if p95 < 50 else 'FAIL'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
