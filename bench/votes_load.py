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
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _stack import (
    Server,
    load_average,
    parent_pid,
    postgres_cpu_s,
    process_cpu_s,
)
from _votes_db import print_verification, server_env, setup_database, verify

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


# --------------------------------------------------------------------------- server


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


def _request_cpu(env, var_dir, items: list) -> Phase:
    """CPU per request of each process, one request at a time; returns the votes as a phase
    (they are verified with the others)."""
    server = Server("sync", 1, 1)
    server.start(env, var_dir)
    records: list[Record] = []
    try:
        (worker,) = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                     and parent_pid(int(p.name)) == server.proc.pid]  # fmt: skip
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
            w0, p0, c0 = process_cpu_s(worker), postgres_cpu_s(), time.process_time()
            for battle, token in items:
                send(battle, token)
            n = len(items)
            w, p, c = ((x - y) / n * 1000 for x, y in (
                (process_cpu_s(worker), w0), (postgres_cpu_s(), p0), (time.process_time(), c0)
            ))  # fmt: skip
            cost[name] = w + p
            print(f"    {name}: gunicorn {w:.2f} ms, PostgreSQL {p:.2f} ms, client {c:.2f} ms")
        print(f"    a vote costs the server (gunicorn + PostgreSQL) "
              f"{cost['POST vote'] / cost['GET /api/me/']:.1f} x GET /api/me/")  # fmt: skip
    finally:
        server.stop()
    return Phase("CPU per request", server.describe(), 1, 0.0, records)


def _clients(args: argparse.Namespace) -> tuple[int, int]:
    procs, threads = (int(x) for x in args.clients.lower().split("x"))
    return procs, threads


def main() -> int:
    args = _args()
    procs, threads = _clients(args)
    classes = ["sync", "gthread"] if args.worker_class == "auto" else [args.worker_class]
    trial_votes = int(args.trial * 1000) if len(classes) > 1 else 0  # 1000 votes/s of room
    print(f"votes_load: {os.cpu_count()} CPUs, load average {load_average()} at start")
    print(
        "  ARENA_VOTES_PER_MINUTE=0: the per-user/per-address vote limit is off, since every "
        "client shares 127.0.0.1 (it would allow 30 votes a minute)"
    )
    var_dir = Path(tempfile.mkdtemp(prefix="votes-load-"))
    env = server_env(args, var_dir)
    try:
        request_cpu = args.request_cpu if Path("/proc/self/stat").exists() else 0
        items = setup_database(args, env, args.max_votes + trial_votes * len(classes) + request_cpu)
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
        load_before = load_average()
        main_phase = _phase("measured", _server(best, args), env, var_dir,
                            items[: args.max_votes], args.duration, args, args.healthz)  # fmt: skip
        phases.append(main_phase)
        print(f"  load average {load_before} before the measured run, {load_average()} after")
        ok_db = print_verification(v := verify(phases))
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


if __name__ == "__main__":
    sys.exit(main())
