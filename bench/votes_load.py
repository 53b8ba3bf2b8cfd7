"""Load benchmark of the arena's vote path: gunicorn on PostgreSQL, concurrent clients on
loopback casting votes through the HTTP API. Prints figures, then checks the database.

    python bench/votes_load.py [--duration 20] [--worker-class auto] [--clients 2x8]

Targets (the issue): at least 500 votes/s sustained, p99 under 100 ms, and afterwards the
stored votes equal the acknowledged votes, with no duplicates.

What it does, all on 127.0.0.1:
1. Drops and recreates the database --db on PostgreSQL (--pg, trust auth), migrates it, and
   seeds users with API tokens, --contestants local contestants (a dummy model path: nothing is
   generated) and anonymous battles whose one turn has two succeeded answers, ready to vote on.
   A small share of answers names its model, so that the "kept but not counted" branch runs too.
2. Starts gunicorn on a free port with DJANGO_DEBUG=0, a temporary VAR_DIR, the filesystem
   Celery broker and ARENA_VOTES_PER_MINUTE=0: the per-user and per-address limit (30 a minute)
   would otherwise refuse nearly every vote, as all clients share one address.
3. With --worker-class auto, a short trial of sync and of gthread workers each; the faster one
   (votes/s) serves the measured run. Every phase votes on its own battles. Before the measured
   run, --healthz seconds each of GET /healthz and of GET /api/me/ on the same server give the
   ceiling of the stack on this machine at that moment, without any vote logic.
4. With --request-cpu N (Linux), before the trials: one sync worker, one client, N requests
   of each kind sent one at a time (a vote, GET of the voted battle, GET /api/me/, GET
   /healthz), and the CPU each used in the gunicorn worker, in PostgreSQL (all its processes)
   and in the client, read from /proc. Throughput on a shared machine swings with its
   neighbours; the CPU a vote costs, next to what /api/me/ costs, moves far less.
5. Client processes (multiprocessing) with threads, each thread one keep-alive connection
   (plain http.client, whose per-request CPU is smaller than requests': the load generator
   shares the cores with the server), POST /api/battles/{id}/vote/ with
   `Authorization: Bearer <token>` on battles their user owns, in a closed loop until --duration
   or the battles run out. After an acknowledged vote, with probability --replay-share, the
   thread votes again on one of its acknowledged battles with another winner; that must get
   409 and change nothing. A few vote responses per thread are compared with a GET of the battle.
6. Verifies in the database, over all phases: voted battles == acknowledged votes, every
   acknowledged battle voted exactly once with the winner that was sent, replays left winners
   unchanged, Contestant.elo_votes sums to 2 x counted votes and the Elo sum is conserved.
   The database is left in place for inspection (the next run drops it).

Latency is that of every first vote (whatever its status); votes/s counts acknowledged (200)
votes over the run. The load generator shares the machine with the server and PostgreSQL; the
load average is printed before and after so that figures from a busy machine can be read as such.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WINNERS = ("model_a", "model_b", "tie", "both_bad")
TARGET_RATE = 500.0  # votes/s
TARGET_P99_MS = 100.0


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=20.0, help="seconds of the measured run")
    p.add_argument("--trial", type=float, default=6.0, help="seconds of each auto trial")
    p.add_argument("--max-votes", type=int, default=20000, help="battles of the measured run")
    p.add_argument("--worker-class", default="auto", choices=["auto", "sync", "gthread"])
    p.add_argument("--workers", type=int, default=0, help="0: 4 for sync, 2 for gthread")
    p.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    p.add_argument("--clients", default="2x8", help="PROCESSESxTHREADS of the load generator")
    p.add_argument("--healthz", type=float, default=5.0, help="seconds of each ceiling GET")
    p.add_argument(
        "--request-cpu",
        type=int,
        default=300,
        help="requests of each kind in the CPU-per-request phase (0: skip it)",
    )
    p.add_argument("--replay-share", type=float, default=0.05)
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--contestants", type=int, default=20)
    p.add_argument("--leak-share", type=float, default=0.02, help="answers naming their model")
    p.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="server URL")
    p.add_argument("--db", default="bench_votes")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


# --------------------------------------------------------------------------- database, seed


def _db_reset(pg: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _server_env(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{args.pg}/{args.db}",
        DJANGO_DEBUG="0",
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(var_dir),
        MODEL_CACHE_DIR=str(var_dir / "models"),
        CELERY_BROKER_URL="filesystem://",
        ARENA_VOTES_PER_MINUTE="0",
        HF_HUB_OFFLINE="1",
        LOG_LEVEL="WARNING",
    )
    env.pop("CACHE_URL", None)  # the default per-process cache, as on a plain install
    for sub in ("broker/queue", "broker/processed", "broker/control"):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)
    return env


_NAMES = (
    "aurora basalt cobalt dune ember fjord garnet harbor iris juniper kestrel lumen marlin "
    "nimbus onyx prairie quartz raven sierra tundra umber vesper willow xenon yarrow zephyr"
).split()
_PROMPTS = [
    "Explain how a hash map handles collisions.",
    "Write a haiku about autumn rain.",
    "What is 17 * 23, and how do you check it?",
    "Give me three tips for a job interview.",
    "Summarise the causes of the French Revolution.",
    "How do I reverse a list in Python?",
    "Suggest a name for a bakery by the sea.",
    "Why is the sky blue?",
]
_PARAGRAPH = (
    "The short version is that it depends on what you need, but a few points hold in most "
    "cases. Start with the simplest thing that works, measure it, and only then refine it. "
)


def _answer(rng: random.Random, k: int) -> str:
    """A plausible answer with some Markdown, so that the style features have work to do."""
    parts = [_PARAGRAPH * rng.randint(1, 4)]
    if k % 3 == 0:
        parts.append("## Details\n" + "\n".join(f"- point {i}" for i in range(rng.randint(2, 6))))
    if k % 4 == 1:
        parts.append("**In short:** keep it simple.\n```python\nprint('done')\n```")
    return "\n\n".join(parts)


def _seed(args: argparse.Namespace, n_battles: int) -> list[tuple[str, str]]:
    """Users, tokens, contestants and ready battles; returns (battle public id, token) pairs."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from arena import hygiene
    from arena.models import Backend, Battle, BattleTurn, Contestant, Generation

    rng = random.Random(args.seed)
    now = timezone.now()
    User = get_user_model()
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(username=f"voter{i:05d}", password="!") for i in range(args.users)
        )
        tokens = Token.objects.bulk_create(
            Token(key=Token.generate_key(), user=u, created=now) for u in users
        )
        contestants = Contestant.objects.bulk_create(
            Contestant(
                name=f"{_NAMES[k % len(_NAMES)]}-{k + 1}b",
                display_name=f"{_NAMES[k % len(_NAMES)].title()} {k + 1}B",
                organization=f"{_NAMES[k % len(_NAMES)].title()} Labs",
                backend=Backend.LOCAL,
                model_path=f"/nonexistent/bench/{k}",
            )
            for k in range(args.contestants)
        )
    items = []
    for start in range(0, n_battles, 2000):
        count = min(2000, n_battles - start)
        specs = []
        for i in range(start, start + count):
            a, b = rng.sample(contestants, 2)
            prompt = rng.choice(_PROMPTS)
            outputs = [_answer(rng, i), _answer(rng, i + 1)]
            if rng.random() < args.leak_share:
                outputs[0] = f"As {a.display_name}, I would say: " + outputs[0]
            specs.append((i % args.users, a, b, prompt, outputs))
        with transaction.atomic():
            generations = Generation.objects.bulk_create(
                Generation(
                    contestant=side,
                    messages=[{"role": "user", "content": prompt}],
                    status="succeeded",
                    output=out,
                    finish_reason="stop",
                    requested_by=users[u],
                    started_at=now,
                    finished_at=now,
                )
                for u, a, b, prompt, outputs in specs
                for side, out in zip((a, b), outputs, strict=True)
            )
            battles = Battle.objects.bulk_create(
                Battle(
                    contestant_a=a,
                    contestant_b=b,
                    user=users[u],
                    categories=(cats := hygiene.categorize([{"role": "user", "content": p}])),
                    category=cats[0],
                )
                for u, a, b, p, _ in specs
            )
            BattleTurn.objects.bulk_create(
                BattleTurn(
                    battle=battle,
                    index=0,
                    user_message=spec[3],
                    generation_a=generations[2 * j],
                    generation_b=generations[2 * j + 1],
                )
                for j, (battle, spec) in enumerate(zip(battles, specs, strict=True))
            )
        items += [(str(b.public_id), tokens[s[0]].key) for b, s in zip(battles, specs, strict=True)]
    return items


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    worker_class: str
    workers: int
    threads: int
    port: int = 0
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        plural = "s" if self.workers != 1 else ""
        return f"gunicorn {self.worker_class}, {self.workers} worker{plural}{threads}"

    def start(self, env: dict[str, str], var_dir: Path) -> None:
        self.port = _free_port()
        self.log = var_dir / f"gunicorn-{self.worker_class}.log"
        cmd = [
            str(BIN / "gunicorn"), "config.wsgi",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", self.worker_class,
            "--threads", str(self.threads if self.worker_class == "gthread" else 1),
            "--keep-alive", "5",
            "--timeout", "60",
            "--log-level", "warning",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    # Touch every worker once so that imports and connections are warm.
                    for _ in range(4 * self.workers):
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                        conn.request("GET", "/healthz")
                        conn.getresponse().read()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /healthz within 60 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- clients

# One request: (kind, battle id, winner sent, status, seconds since start at the end, latency s)
Record = tuple[str, str, str, "int | str", float, float]


def _post(conn: http.client.HTTPConnection, battle: str, token: str, winner: str):
    body = json.dumps({"winner": winner}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    try:
        conn.request("POST", f"/api/battles/{battle}/vote/", body, headers)
        response = conn.getresponse()
        data, status = response.read(), response.status
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        data, status = b"", f"error:{type(exc).__name__}"
    return status, data, time.perf_counter() - t0


def _client_thread(port, items, start_at, deadline, replay_share, seed, out, bad, samples):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    acked: list[tuple[str, str, str]] = []
    time.sleep(max(0.0, start_at - time.time()))
    for battle, token in items:
        if time.time() >= deadline:
            break
        winner = rng.choice(WINNERS)
        status, data, latency = _post(conn, battle, token, winner)
        out.append(("vote", battle, winner, status, time.time() - start_at, latency))
        if status != 200:
            continue
        body = json.loads(data)
        if body.get("winner") != winner or not body.get("model_a") or not body.get("model_b"):
            bad.append(battle)
        acked.append((battle, token, winner))
        if len(acked) <= 2:  # compared with GET /api/battles/{id}/ after the run
            samples.append((battle, token, body))
        if rng.random() < replay_share:
            battle, token, won = rng.choice(acked)
            other = rng.choice([w for w in WINNERS if w != won])
            status, _, latency = _post(conn, battle, token, other)
            out.append(("replay", battle, other, status, time.time() - start_at, latency))
    conn.close()


def _get_thread(port, path, token, start_at, deadline, out) -> None:
    """GET `path` in a closed loop (the ceiling phase)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < deadline:
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            status = f"error:{type(exc).__name__}"
        out.append(("get", path, "", status, time.time() - start_at, time.perf_counter() - t0))
    conn.close()


def _client_process(job: tuple) -> tuple[list[Record], list[str], list[tuple]]:
    port, chunks, start_at, deadline, replay_share, seed = job
    out: list[Record] = []  # list.append is atomic under the GIL
    bad: list[str] = []
    samples: list[tuple] = []
    threads = [
        threading.Thread(
            target=_client_thread,
            args=(port, chunk, start_at, deadline, replay_share, seed * 1000 + k, out, bad,
                  samples),
        ) if isinstance(chunk, list) else
        threading.Thread(target=_get_thread, args=(port, *chunk, start_at, deadline, out))
        for k, chunk in enumerate(chunks)
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, bad, samples


@dataclass
class Phase:
    name: str
    server: str
    concurrency: int
    seconds: float = 0.0
    records: list[Record] = field(default_factory=list)
    bad_bodies: list[str] = field(default_factory=list)
    checked: int = 0  # vote responses compared with a GET of the battle afterwards
    differ: int = 0

    def votes(self) -> list[Record]:
        return [r for r in self.records if r[0] == "vote"]

    def acked(self) -> list[Record]:
        return [r for r in self.votes() if r[3] == 200]

    def rate(self) -> float:
        return len(self.acked()) / self.seconds if self.seconds else 0.0

    def latencies_ms(self) -> list[float]:
        return sorted(r[5] * 1000 for r in self.votes())


def _run_load(
    port: int, items: list | tuple, procs: int, threads: int, seconds: float, args
) -> tuple[list[Record], list[str], list[tuple], float]:
    """Votes on `items` from procs x threads clients for `seconds`; or, when `items` is a
    (path, token) pair, GETs of that path."""
    n = procs * threads
    chunks = [items if isinstance(items, tuple) else items[k::n] for k in range(n)]
    start_at = time.time() + 1.5  # after the client processes have started
    jobs = [
        (port, chunks[p * threads : (p + 1) * threads], start_at, start_at + seconds,
         args.replay_share, args.seed * 100 + p)
        for p in range(procs)
    ]  # fmt: skip
    with mp.get_context("spawn").Pool(procs) as pool:
        results = pool.map(_client_process, jobs)
    records = [r for out, _, _ in results for r in out]
    bad = [b for _, bs, _ in results for b in bs]
    samples = [x for _, _, xs in results for x in xs]
    elapsed = max((r[4] for r in records), default=0.0)
    return records, bad, samples, elapsed


def _same_as_get(port: int, samples: list[tuple]) -> int:
    """How many vote responses differ from GET /api/battles/{id}/ of the same battle."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    differ = 0
    for battle, token, body in samples:
        conn.request("GET", f"/api/battles/{battle}/", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        differ += response.status != 200 or json.loads(response.read()) != body
    conn.close()
    return differ


# --------------------------------------------------------------------------- report, verify


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _report(phase: Phase) -> None:
    votes, acked = phase.votes(), phase.acked()
    lat = phase.latencies_ms()
    replays = [r for r in phase.records if r[0] == "replay"]
    statuses: dict[str, int] = {}
    for r in votes:
        if r[3] != 200:
            statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1
    for r in replays:
        if r[3] != 409:
            statuses[f"replay {r[3]}"] = statuses.get(f"replay {r[3]}", 0) + 1
    per_second: dict[int, int] = {}
    for r in acked:
        per_second[int(r[4])] = per_second.get(int(r[4]), 0) + 1
    full = sorted(per_second.get(s, 0) for s in range(int(phase.seconds)))  # whole seconds only
    print(f"  [{phase.name}] {phase.server}; {phase.concurrency} concurrent clients")
    print(
        f"    duration {phase.seconds:.1f} s, votes sent {len(votes)}, acknowledged (200) "
        f"{len(acked)}, {phase.rate():.0f} votes/s sustained"
        + (f" (per second: min {full[0]}, median {full[len(full) // 2]})" if full else "")
    )
    print(
        f"    latency of votes ms: p50 {_pct(lat, 0.5):.1f}  p95 {_pct(lat, 0.95):.1f}  "
        f"p99 {_pct(lat, 0.99):.1f}  max {lat[-1] if lat else float('nan'):.1f}"
    )
    refused = sum(1 for r in replays if r[3] == 409)
    print(f"    replays {len(replays)}, refused with 409: {refused}")
    print(f"    errors by status: {statuses or 'none'}; 200s with a wrong body: "
          f"{len(phase.bad_bodies)}; vote responses unlike a later GET: "
          f"{phase.differ} of {phase.checked}")  # fmt: skip


def _verify(phases: list[Phase]) -> dict:
    """Compare what the clients were told with what the database holds, over all phases."""
    from django.db.models import Sum

    from arena.models import Battle, Contestant

    records = [r for p in phases for r in p.records]
    acked = [r for r in records if r[0] == "vote" and r[3] == 200]
    sent_ids = {r[1] for r in records if r[0] == "vote"}
    ambiguous = {r[1] for r in records if r[0] == "vote" and r[3] != 200}
    acked_winner = {r[1]: r[2] for r in acked}
    replay_ok = [r for r in records if r[0] == "replay" and r[3] == 200]
    stored = dict(Battle.objects.voted().values_list("public_id", "winner"))
    stored = {str(k): v for k, v in stored.items()}
    counted = Battle.objects.counted().count()
    totals = Contestant.objects.aggregate(votes=Sum("elo_votes"), elo=Sum("elo"))
    n_contestants = Contestant.objects.count()
    replayed = {r[1] for r in records if r[0] == "replay"}
    return {
        "stored": len(stored),
        "acked": len(acked),
        "duplicates": len(acked) - len(acked_winner) + len(replay_ok),
        "unacked_stored": sorted(set(stored) - set(acked_winner)),
        "unsent_stored": sorted(set(stored) - sent_ids),
        "ambiguous": len(ambiguous),
        "acked_missing": sorted(set(acked_winner) - set(stored)),
        "wrong_winner": sorted(b for b, w in acked_winner.items() if stored.get(b, w) != w),
        "replays_changed": sorted(b for b in replayed if stored.get(b) != acked_winner.get(b)),
        "replays": len(replayed),
        "counted": counted,
        "elo_votes": totals["votes"] or 0,
        "elo_drift": abs((totals["elo"] or 0.0) - 1000.0 * n_contestants),
        "bad_bodies": sum(len(p.bad_bodies) + p.differ for p in phases),
        "checked": sum(p.checked for p in phases),
    }


def _print_verification(v: dict) -> bool:
    checks = [
        (f"voted battles {v['stored']} == acknowledged votes {v['acked']}",
         v["stored"] == v["acked"]),
        ("every acknowledged battle voted once, with the winner sent "
         f"(missing {len(v['acked_missing'])}, wrong winner {len(v['wrong_winner'])}, "
         f"stored but not acknowledged {len(v['unacked_stored'])}, "
         f"stored but never sent {len(v['unsent_stored'])})",
         not (v["acked_missing"] or v["wrong_winner"] or v["unacked_stored"]
              or v["unsent_stored"])),
        (f"duplicates (a battle acknowledged twice, or a replay accepted): {v['duplicates']}",
         v["duplicates"] == 0),
        (f"replayed battles keep their first winner: {v['replays']} replayed, "
         f"{len(v['replays_changed'])} changed", not v["replays_changed"]),
        (f"Contestant.elo_votes sum {v['elo_votes']} == 2 x counted votes {v['counted']}",
         v["elo_votes"] == 2 * v["counted"]),
        (f"Elo sum conserved (drift {v['elo_drift']:.2e})", v["elo_drift"] < 1e-6 * 1000),
        ("200 responses reveal both models and the winner sent, and equal a later GET "
         f"({v['checked']} compared; bad: {v['bad_bodies']})", v["bad_bodies"] == 0),
    ]  # fmt: skip
    print("Database check (all phases):")
    for text, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {text}")
    if v["ambiguous"]:
        print(f"  note: {v['ambiguous']} votes got no 200 (error or refusal); none may be stored")
    return all(ok for _, ok in checks)


# --------------------------------------------------------------------------- main


def _phase(name, server, env, var_dir, items, seconds, args, healthz_s: float = 0) -> Phase:
    procs, threads = _clients(args)
    server.start(env, var_dir)
    try:
        if healthz_s:
            ceiling = _ceiling(server, items[0][1], healthz_s, args)
        records, bad, samples, elapsed = _run_load(
            server.port, items, procs, threads, seconds, args
        )
        differ = _same_as_get(server.port, samples)
    finally:
        server.stop()
    phase = Phase(name, server.describe(), procs * threads, elapsed, records, bad)
    phase.checked, phase.differ = len(samples), differ
    _report(phase)
    if healthz_s:  # machines differ and are shared: the ratio travels better than votes/s
        print(f"    votes/s over the GET /api/me/ ceiling of the same server: "
              f"{phase.rate() / ceiling:.2f}")  # fmt: skip
    if any(r[3] not in (200, 409) for r in records):
        print(f"    gunicorn's log ends with:\n{server.log.read_text()[-2000:]}")
    return phase


def _ceiling(server: Server, token: str, seconds: float, args: argparse.Namespace) -> float:
    """What the stack serves on this machine now, with the same clients, doing no vote; returns
    the rate of GET /api/me/."""
    procs, threads = _clients(args)
    print(f"  [ceiling] {server.describe()}; {procs * threads} concurrent clients")
    for path, key, what in (
        ("/healthz", "", "Django middleware and one query"),
        ("/api/me/", token, "DRF, token authentication and one more query"),
    ):
        records, _, _, elapsed = _run_load(server.port, (path, key), procs, threads, seconds, args)
        lat = sorted(r[5] * 1000 for r in records)
        ok = sum(1 for r in records if r[3] == 200)
        print(
            f"    GET {path} ({what}): {ok / elapsed:.0f} req/s, p50 {_pct(lat, 0.5):.1f} ms, "
            f"p99 {_pct(lat, 0.99):.1f} ms"
        )
    return ok / elapsed


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (the state is the first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = _proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_s() -> float:
    """CPU seconds so far of every PostgreSQL process on this machine (backends, writers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                total += _process_cpu_s(int(entry.name))
        except OSError:  # a process that ended meanwhile
            pass
    return total


def _request_cpu(env, var_dir, items: list) -> Phase:
    """CPU per request of each process, one request at a time; returns the votes as a phase
    (they are verified with the others)."""
    server = Server("sync", 1, 1)
    server.start(env, var_dir)
    records: list[Record] = []
    try:
        (worker,) = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                     and _parent(int(p.name)) == server.proc.pid]  # fmt: skip
        print(f"  [CPU per request] {server.describe()}; one client, one request at a time, "
              f"{len(items)} of each")  # fmt: skip

        def vote(battle, token):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            status, _, latency = _post(conn, battle, token, "tie")
            records.append(("vote", battle, "tie", status, 0.0, latency))
            conn.close()

        def get(path, token=""):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
            conn.getresponse().read()
            conn.close()

        kinds = [
            ("POST vote", vote),
            ("GET /api/battles/{id}/", lambda battle, token: get(f"/api/battles/{battle}/", token)),
            ("GET /api/me/", lambda battle, token: get("/api/me/", token)),
            ("GET /healthz", lambda battle, token: get("/healthz")),
        ]
        cost = {}
        for name, send in kinds:
            w0, p0, c0 = _process_cpu_s(worker), _postgres_cpu_s(), time.process_time()
            for battle, token in items:
                send(battle, token)
            n = len(items)
            w, p, c = ((x - y) / n * 1000 for x, y in (
                (_process_cpu_s(worker), w0), (_postgres_cpu_s(), p0), (time.process_time(), c0)
            ))  # fmt: skip
            cost[name] = w + p
            print(f"    {name}: gunicorn {w:.2f} ms, PostgreSQL {p:.2f} ms, client {c:.2f} ms")
        print(f"    a vote costs the server (gunicorn + PostgreSQL) "
              f"{cost['POST vote'] / cost['GET /api/me/']:.1f} x GET /api/me/")  # fmt: skip
    finally:
        server.stop()
    return Phase("CPU per request", server.describe(), 1, 0.0, records)


def _parent(pid: int) -> int:
    try:
        return int(_proc_stat(pid)[1])
    except (OSError, ValueError, IndexError):
        return -1


def _clients(args: argparse.Namespace) -> tuple[int, int]:
    procs, threads = (int(x) for x in args.clients.lower().split("x"))
    return procs, threads


def _setup(args: argparse.Namespace, env: dict[str, str], n_battles: int) -> list:
    """A fresh, migrated, seeded database; Django set up in this process to read it."""
    t0 = time.perf_counter()
    _db_reset(args.pg, args.db)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    for key in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "VAR_DIR", "ARENA_VOTES_PER_MINUTE"):
        os.environ[key] = env[key]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    t1 = time.perf_counter()
    items = _seed(args, n_battles)
    print(
        f"  database {args.db}: migrated in {t1 - t0:.1f} s; seeded {args.users} users with "
        f"tokens, {args.contestants} contestants, {len(items)} ready battles in "
        f"{time.perf_counter() - t1:.1f} s"
    )
    from django.db import connection

    connection.close()
    return items


def main() -> int:
    args = _args()
    procs, threads = _clients(args)
    classes = ["sync", "gthread"] if args.worker_class == "auto" else [args.worker_class]
    trial_votes = int(args.trial * 1000) if len(classes) > 1 else 0  # 1000 votes/s of room
    print(f"votes_load: {os.cpu_count()} CPUs, load average {_load()} at start")
    print(
        "  ARENA_VOTES_PER_MINUTE=0: the per-user/per-address vote limit is off, since every "
        "client shares 127.0.0.1 (it would allow 30 votes a minute)"
    )
    var_dir = Path(tempfile.mkdtemp(prefix="votes-load-"))
    env = _server_env(args, var_dir)
    try:
        request_cpu = args.request_cpu if Path("/proc/self/stat").exists() else 0
        items = _setup(args, env, args.max_votes + trial_votes * len(classes) + request_cpu)
        phases = []
        if request_cpu:
            phases.append(_request_cpu(env, var_dir, items[-request_cpu:]))
        best = classes[0]
        if len(classes) > 1:
            rates = {}
            for k, cls in enumerate(classes):
                chunk = items[args.max_votes + k * trial_votes :][:trial_votes]
                phases.append(_phase(f"trial {cls}", _server(cls, args), env, var_dir, chunk,
                                     args.trial, args))  # fmt: skip
                rates[cls] = phases[-1].rate()
            best = max(rates, key=rates.get)
            print(f"  using {best} workers (faster in the trials)")
        load_before = _load()
        main_phase = _phase("measured", _server(best, args), env, var_dir,
                            items[: args.max_votes], args.duration, args, args.healthz)  # fmt: skip
        phases.append(main_phase)
        print(f"  load average {load_before} before the measured run, {_load()} after")
        ok_db = _print_verification(v := _verify(phases))
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    lat = main_phase.latencies_ms()
    rate, p99 = main_phase.rate(), _pct(lat, 0.99)
    print(
        f"votes_load: {rate:.0f} votes/s, p99 {p99:.0f} ms, stored {v['stored']} == acked "
        f"{v['acked']}, duplicates {v['duplicates']}"
    )
    results = [
        (f"throughput >= {TARGET_RATE:.0f} votes/s", rate >= TARGET_RATE),
        (f"p99 < {TARGET_P99_MS:.0f} ms", p99 < TARGET_P99_MS),
        ("stored == acknowledged, no duplicates", ok_db),
    ]
    for text, ok in results:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in results) else 1


def _server(worker_class: str, args: argparse.Namespace) -> Server:
    workers = args.workers or (4 if worker_class == "sync" else 2)
    return Server(worker_class, workers, args.threads)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
