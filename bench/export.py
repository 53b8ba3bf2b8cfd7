"""Preference export benchmark: rankings in PostgreSQL -> preference pairs in Parquet.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_export .venv/bin/python bench/export.py
        [--repeat 3] [--reseed]

Seeds (once) two projects of K=4 rankings with no ties, which `all` expands into 6 pairs each:
`bench-100k` (16,667 rankings -> 100,002 pairs) and `bench-1m` (166,667 -> 1,000,002 pairs),
with 4 answers of about 300 characters per prompt from 4 models. Then exports each project with
`annotation.datasets.export_to_files` (the code behind snapshots and `export_dataset`) in a fresh
child process, and prints rows/s, seconds and peak RSS growth over the child's baseline. PASS
needs 1M pairs in under 20 s and a peak at 1M within 1.5x of the peak at 100k (flat memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_export")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

SIZES = {"bench-100k": 16_667, "bench-1m": 166_667}
K = 4
LIMIT_S = 20.0
FLAT_RATIO = 1.5
WORDS = (
    "the model answers the question with care and a short example that shows how it "
    "works in practice while noting limits of the approach and what to try next"
).split()


def _setup():
    import django

    django.setup()


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _text(n: int, length: int = 300) -> str:
    words, k = [], n
    while sum(map(len, words)) + len(words) < length:
        words.append(WORDS[k % len(WORDS)])
        k = k * 31 + 7
    return " ".join(words)


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


PROMPT_COLUMNS = ["id", "project_id", "messages", "category", "tags", "source", "content_hash",
                  "created_at"]  # fmt: skip
ANSWER_COLUMNS = ["id", "prompt_id", "source", "contestant_id", "settings", "text", "is_ready",
                  "failed", "created_at"]  # fmt: skip
RANKING_COLUMNS = ["project_id", "prompt_id", "annotator_id", "origin", "groups", "display_order",
                   "all_bad", "labels", "rationale", "guidelines_version", "is_gold", "created_at",
                   "review_status", "review_comment"]  # fmt: skip


def _copy_project(cursor, project: int, count: int, models: list[int], user: int, now: str):
    """COPY `count` prompts, K answers each and one accepted ranking each into `project`, with
    the psycopg `cursor` (inside the caller's transaction)."""
    cursor.execute("SELECT coalesce(max(id), 0) FROM annotation_prompt")
    first_prompt = cursor.fetchone()[0] + 1
    cursor.execute("SELECT coalesce(max(id), 0) FROM annotation_completion")
    first_answer = cursor.fetchone()[0] + 1
    prompts = (
        (first_prompt + n, project,
         json.dumps([{"role": "user", "content": f"Question {n}: {_text(n, 120)}?"}]),
         ("math", "code", "writing")[n % 3], "[]", "bench", "", now)
        for n in range(count)
    )  # fmt: skip
    answers = (
        (first_answer + n * K + k, first_prompt + n, "model", models[k],
         '{"temperature": 0.8, "top_p": 0.95}', _text(n * K + k), True, False, now)
        for n in range(count)
        for k in range(K)
    )  # fmt: skip
    rankings = (
        (project, first_prompt + n, user, "task",
         json.dumps([[first_answer + n * K + (k + n) % K] for k in range(K)]), "[]", False, "{}",
         "", 1, False, now, "accepted", "")
        for n in range(count)
    )  # fmt: skip
    _copy(cursor, "annotation_prompt", PROMPT_COLUMNS, prompts)
    _copy(cursor, "annotation_completion", ANSWER_COLUMNS, answers)
    _copy(cursor, "annotation_ranking", RANKING_COLUMNS, rankings)
    for table in ("annotation_prompt", "annotation_completion", "annotation_ranking"):
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )


def seed(reseed: bool) -> None:
    """Bulk-load both projects with COPY (Django's ORM would take minutes for 800k rows)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation import services
    from annotation.models import Project
    from arena.services import contestant_create

    call_command("migrate", verbosity=0)
    if reseed:
        Project.objects.filter(slug__in=SIZES).delete()
    if Project.objects.filter(slug__in=SIZES).count() == len(SIZES):
        return
    user, _ = get_user_model().objects.get_or_create(username="bench-annotator")
    from arena.models import Contestant

    models = [
        Contestant.objects.filter(name=f"bench-model-{m}").first()
        or contestant_create(
            name=f"bench-model-{m}",
            display_name=f"Bench {m}",
            backend="local",
            model_path=f"/models/{m}",
        )
        for m in range(K)
    ]
    now = timezone.now().isoformat()
    started = time.perf_counter()
    for slug, count in SIZES.items():
        Project.objects.filter(slug=slug).delete()
        project = services.project_create(name=slug, slug=slug)
        with transaction.atomic(), connection.cursor() as wrapper:
            _copy_project(wrapper.cursor, project.pk, count, [m.pk for m in models], user.pk, now)
        print(
            f"seeded {slug}: {count} rankings, {count * K} answers "
            f"({time.perf_counter() - started:.1f} s so far)",
            flush=True,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def child(slug: str, output: str) -> None:
    """One export in a fresh process, so that its peak RSS is its own."""
    _setup()
    from annotation.datasets import Spec, export_to_files
    from annotation.models import Project

    project = Project.objects.get(slug=slug)
    spec = Spec(source="rankings", format="preference", project=project)
    base = _rss_mb()
    cpu0 = time.process_time()
    started = time.perf_counter()
    stats = export_to_files(spec=spec, paths={"parquet": Path(output)})
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu0  # this process only; PostgreSQL's own work is not in it
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": stats.rows,
                "seconds": seconds,
                "cpu": cpu,
                "base_mb": base,
                "peak_mb": peak,
                "bytes": Path(output).stat().st_size,
            }
        )
    )


def run_one(slug: str, output: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", slug, "--output", str(output)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--output", default=str(ROOT / "var" / "bench-export"))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.output)
        return
    _setup()
    seed(args.reseed)
    if args.seed_only:
        return
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"cores: {os.cpu_count()}, load average before: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    results: dict[str, list[dict]] = {slug: [] for slug in SIZES}
    for attempt in range(1, args.repeat + 1):
        for slug in SIZES:
            r = run_one(slug, out / f"{slug}.parquet")
            results[slug].append(r)
            growth = r["peak_mb"] - r["base_mb"]
            print(
                f"run {attempt} {slug}: {r['rows']:>9,} pairs in {r['seconds']:6.2f} s "
                f"= {r['rows'] / r['seconds']:>9,.0f} rows/s (cpu {r['cpu']:.1f} s); "
                f"peak RSS {r['peak_mb']:.0f} MB "
                f"(+{growth:.0f} MB over {r['base_mb']:.0f} MB at start); "
                f"parquet {r['bytes'] / 2**20:.0f} MB; "
                f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
                flush=True,
            )
    best_1m = min(r["seconds"] for r in results["bench-1m"])
    growth = {slug: min(r["peak_mb"] - r["base_mb"] for r in rs) for slug, rs in results.items()}
    flat = growth["bench-1m"] <= FLAT_RATIO * max(growth["bench-100k"], 1.0)
    print(
        f"1M pairs best {best_1m:.2f} s (limit {LIMIT_S:.0f} s): "
        f"{'PASS' if best_1m < LIMIT_S else 'FAIL'}"
    )
    print(
        f"peak RSS growth 100k: {growth['bench-100k']:.0f} MB, 1M: {growth['bench-1m']:.0f} MB"
        f" (flat = within {FLAT_RATIO}x): {'PASS' if flat else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
