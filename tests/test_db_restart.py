"""Load with a database restart in the middle: voters and annotators write through the HTTP API
of a real server while its PostgreSQL stops and starts again. While the database is down every
request gets a quick 503 with a JSON message; once it is back, writes succeed again; afterwards
every acknowledged vote and ranking is stored exactly once.

The server runs on a private PostgreSQL (initdb in a temporary folder, its own port), so the
restart never touches the database the rest of the suite uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.support import load
from tests.support.postgres import PrivatePostgres, free_port, postgres_bindir
from tests.support.web import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
VOTERS, BATTLES_EACH, ANNOTATORS, ITEMS, OVERLAP = 4, 300, 4, 300, 2
BEFORE_S, DOWN_S, AFTER_S = 3.0, 3.0, 3.0
OUTAGE_ANSWER_S = 5.0  # while the database is down, a request is answered within this
SLOWEST_ANSWER_S = 10.0  # and no request, outage or not, waits longer than this

pytestmark = pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="restarts a PostgreSQL server; the SQLite pass has no database server to restart",
)


@pytest.fixture
def private_postgres():
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("initdb and pg_ctl are not installed (set PG_BINDIR)")
    pg = PrivatePostgres(bindir).init()
    pg.start()
    yield pg
    pg.remove()


def _seed(database_url: str) -> dict:
    args = {"voters": VOTERS, "battles_each": BATTLES_EACH, "annotators": ANNOTATORS,
            "items": ITEMS, "overlap": OVERLAP}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.load", "seed", json.dumps(args)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def server(private_postgres, tmp_path):
    """gunicorn (2 workers x 4 threads) on the private database, with persistent connections as
    in production, so that the restart breaks connections the server holds."""
    url = private_postgres.create_database("restart")
    seeded = _seed(url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "0",
        "VAR_DIR": str(tmp_path / "var"),
        "CELERY_BROKER_URL": "filesystem://",  # nothing consumes; publishing must not matter
        "ARENA_VOTES_PER_MINUTE": "0",  # every client shares 127.0.0.1
        "LOG_LEVEL": "ERROR",
    }
    env.pop("CACHE_URL", None)
    for sub in ("queue", "processed", "control"):
        (tmp_path / "var" / "broker" / sub).mkdir(parents=True, exist_ok=True)
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--timeout", "60",
         "--access-logfile", str(tmp_path / "access.log"),
         "--access-logformat", "%(t)s %(p)s %(r)s %(s)s %(D)s"],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, proc, tmp_path / "gunicorn.log", warm="/api/me/")
        yield base_url, seeded, url, tmp_path / "gunicorn.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _run_clients(base_url: str, seeded: dict, pg: PrivatePostgres) -> tuple[load.LoadRecord, dict]:
    """Clients write for BEFORE_S, the database is down for DOWN_S, then up for AFTER_S; each
    client then settles the write in hand (retrying with its key) and stops."""
    record, stop = load.LoadRecord(), threading.Event()
    give_up_at = time.monotonic() + BEFORE_S + DOWN_S + AFTER_S + 60
    by_owner: dict[str, list] = {}
    for battle, token in seeded["battles"]:
        by_owner.setdefault(token, []).append((battle, token))
    threads = [
        threading.Thread(target=load.voter, args=(base_url, battles, record, stop, give_up_at, k))
        for k, battles in enumerate(by_owner.values())
    ] + [
        threading.Thread(target=load.annotator,
                         args=(base_url, token, record, stop, give_up_at, 100 + k))
        for k, token in enumerate(seeded["annotators"])
    ]  # fmt: skip
    times = {"start": time.monotonic()}
    for t in threads:
        t.start()
    time.sleep(BEFORE_S)
    times["down"] = time.monotonic()
    pg.stop("fast")
    times["stopped"] = time.monotonic()
    time.sleep(DOWN_S)
    times["starting"] = time.monotonic()
    pg.start()
    times["up"] = time.monotonic()
    time.sleep(AFTER_S)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    times["end"] = time.monotonic()
    assert not any(t.is_alive() for t in threads), "a client hung"
    return record, times


def _stored(database_url: str) -> dict:
    import psycopg

    with psycopg.connect(database_url) as conn:
        votes = dict(
            conn.execute(
                "SELECT public_id::text, winner FROM arena_battle WHERE winner <> ''"
            ).fetchall()
        )
        counted = conn.execute(
            "SELECT count(*) FROM arena_battle WHERE winner <> '' AND excluded_reason = '' "
            "AND mode = 'anonymous'"
        ).fetchone()[0]
        elo_votes = conn.execute("SELECT sum(elo_votes) FROM arena_contestant").fetchone()[0]
        rankings = conn.execute(
            "SELECT r.id, r.assignment_id, r.item_id, r.annotator_id FROM annotation_ranking r "
            "JOIN annotation_project p ON p.id = r.project_id WHERE p.slug = %s",
            [load.PROJECT_SLUG],
        ).fetchall()
        taken_over = conn.execute(
            "SELECT count(*) FROM annotation_item WHERE taken > %s", [OVERLAP]
        ).fetchone()[0]
    return {"votes": votes, "counted": counted, "elo_votes": elo_votes, "rankings": rankings,
            "items_over_overlap": taken_over}  # fmt: skip


@pytest.mark.slow
def test_writes_survive_a_database_restart_under_load(server, private_postgres):
    base_url, seeded, database_url, log = server
    record, t = _run_clients(base_url, seeded, private_postgres)
    attempts = record.attempts
    # Sent after the server had stopped and before it was started again: none can succeed.
    outage = [a for a in attempts if t["stopped"] <= a.started < t["starting"]]
    failed = [a for a in attempts if a.status not in (200, 201, 204)]
    unclear = [a for a in failed if a.status != 503 or not a.detail]
    after = [a for a in attempts if a.started >= t["up"] and a.status in (200, 201)]
    slowest = max(attempts, key=lambda a: a.seconds)
    slowest_down = max((a.seconds for a in outage), default=0.0)
    stored = _stored(database_url)
    ranking_ids = [r[0] for r in stored["rankings"]]
    acked_rankings = set(record.rankings.values())
    figures = (
        f"requests tried {len(attempts)}; writes acknowledged: {len(record.votes)} votes, "
        f"{len(record.rankings)} rankings ({len(record.replayed)} of them by an idempotent "
        f"replay); database down {t['up'] - t['down']:.1f} s (stop {t['stopped'] - t['down']:.2f}"
        f" s, start {t['up'] - t['starting']:.2f} s); requests sent while it was off "
        f"{len(outage)}, failed {sum(a.status not in (200, 201, 204) for a in outage)}, slowest "
        f"of them {slowest_down:.2f} s; failures "
        f"overall {len(failed)} ({_by_status(failed)}), not a 503 with a message {len(unclear)}; "
        f"slowest answer {slowest.seconds:.2f} s ({slowest.kind} {slowest.status}, sent "
        f"{slowest.started - t['down']:+.2f} s from the stop); acknowledged after the restart "
        f"{len(after)}; refused {len(record.refused)}, unsettled {len(record.unsettled)}; rows "
        f"checked: {len(stored['votes'])} voted battles, {len(stored['rankings'])} rankings"
    )
    print("\n" + figures)
    context = f"{figures}\n{record.refused[:5]} {record.unsettled[:5]}\n{log.read_text()[-2000:]}"
    # While it was down, clients were told so, quickly and clearly.
    assert outage and all(a.status == 503 for a in outage), context
    assert not unclear, f"{[(a.kind, a.status, a.detail) for a in unclear[:5]]}\n{context}"
    assert slowest_down < OUTAGE_ANSWER_S and slowest.seconds < SLOWEST_ANSWER_S, context
    # Once it was back, writes went through again, and every write was settled.
    assert len(after) >= 10, context
    assert not record.refused and not record.unsettled, context
    # Every acknowledged write is stored once, as sent, and nothing else is.
    assert stored["votes"] == record.votes, context
    assert stored["elo_votes"] == 2 * stored["counted"], context  # Elo moved once per vote
    assert sorted(ranking_ids) == sorted(acked_rankings), context
    assert len({r[1] for r in stored["rankings"]}) == len(ranking_ids), context  # one a task
    assert len({(r[2], r[3]) for r in stored["rankings"]}) == len(ranking_ids), context
    assert stored["items_over_overlap"] == 0, context


def _by_status(attempts: list) -> str:
    counts: dict[str, int] = {}
    for a in attempts:
        counts[str(a.status)] = counts.get(str(a.status), 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"
