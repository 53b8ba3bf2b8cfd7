"""Benchmark of `manage.py compute_leaderboard` end to end; prints figures, asserts nothing.

    python bench/compute_leaderboard.py [--battles 1000000] [--rounds 1000] [--ref-rounds 100]
        [--repeat 1] [--synthetic] [--ref-bootstrap {counts,battles,both}]

Writes --battles battles to a temporary CSV in the layout of the public 2025 release (16 columns:
id, model_a, model_b, winner, category flags and scores), drawn with replacement from the real
votes in shared/data (or, with --synthetic or when they are absent, from 50 made-up models with
known strengths). Then times, each in a fresh process, so interpreter start, imports and parsing
count:

* ours: `python manage.py compute_leaderboard --input FILE` with its default 1,000 bootstrap
  rounds (Arrow parses the file; the bootstrap refits counts per pair);
* the reference: a plain implementation in this file, independent of the project: the `csv`
  module reads the file, the same Bradley-Terry fit (ties as half a win, L-BFGS on the counts
  per pair) and online Elo, and --ref-rounds (default 100) bootstrap rounds, each refitted from
  the point estimate. A round resamples either the battles (`battles`: N draws with
  replacement, as FastChat's bootstrap does) or, the same in distribution, the counts per pair
  and outcome (`counts`: one multinomial draw); both are timed unless --ref-bootstrap picks one.
  The fits stop where FastChat's `compute_bt` stops (docs/ratings.md: a few tenths of a point
  short of the optimum).

One line per reference: both wall times (best of --repeat), the ratio (reference / ours) and
the ratio per bootstrap round (the reference's time per round over ours). CPU seconds (user +
system) are printed too: on a shared machine they move less than wall time. The ratings of both
are compared (same battles, same model): their largest difference over models with at least
1,000 votes is printed as a check (L-BFGS stopped early leaves a model with a handful of votes
near its start).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "arena_human_preference_140k_votes.csv.gz"
if not REAL.exists():
    REAL = Path(os.environ.get("SHARED_DATA_DIR", "/nonexistent")) / REAL.name


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--battles", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1000, help="our bootstrap rounds")
    parser.add_argument("--ref-rounds", type=int, default=100, help="reference bootstrap rounds")
    parser.add_argument("--repeat", type=int, default=1, help="timing runs; the best is shown")
    parser.add_argument("--synthetic", action="store_true", help="made-up models, not real ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ref-bootstrap",
        dest="ref_bootstrap",
        choices=("counts", "battles", "both"),
        default="both",
        help="how the reference resamples (default: time both)",
    )
    parser.add_argument("--how", default="counts", help=argparse.SUPPRESS)
    parser.add_argument("--reference", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--output", metavar="FILE", help=argparse.SUPPRESS)
    return parser.parse_args()


# --------------------------------------------------------------------------- the battle file


def write_battles(path: Path, n: int, seed: int, synthetic: bool) -> str:
    """n battles as a CSV file; returns where they come from."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    if not synthetic and REAL.exists():
        real = pcsv.read_csv(REAL)
        table = real.take(pa.array(rng.integers(0, real.num_rows, n)))
        pcsv.write_csv(table, path)
        return f"drawn from {real.num_rows:,} real votes"
    m = 50
    strength = rng.normal(0.0, 0.6, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1 / (1 + np.exp(strength[b] - strength[a]))
    u = rng.random(n)
    winner = np.where(u < 0.1, "tie", np.where(u < 0.12, "both_bad", "model_a"))
    winner = np.where((u >= 0.12) & (rng.random(n) > p), "model_b", winner)
    names = np.array([f"model-{k:02d}" for k in range(m)])
    columns = {"id": [f"b{k}" for k in range(n)], "model_a": names[a], "model_b": names[b]}
    columns["winner"] = winner
    for flag in ("math.math", "if.if", "creative_writing.creative_writing"):
        columns[flag] = (rng.random(n) < 0.2).astype(np.int64)
    pcsv.write_csv(pa.table(columns), path)
    return f"synthetic, {m} models"


# --------------------------------------------------------------------------- the reference


def ref_read(path: Path) -> tuple[list[str], list[str], list[str]]:
    """model_a, model_b and winner columns, read with the csv module."""
    model_a, model_b, winner = [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        ia, ib, iw = (header.index(c) for c in ("model_a", "model_b", "winner"))
        for row in reader:
            model_a.append(row[ia])
            model_b.append(row[ib])
            winner.append(row[iw])
    return model_a, model_b, winner


def ref_counts(a, b, y, m):
    """Wins of the lower code, ties and wins of the higher code per pair of models."""
    import numpy as np

    lo, hi = np.minimum(a, b), np.maximum(a, b)
    code = np.where(a == lo, 2 - 2 * y, 2 * y).astype(np.int64)  # 0: lo wins, 1 tie, 2 hi wins
    counts = np.bincount((lo * m + hi) * 3 + code, minlength=m * m * 3).reshape(m * m, 3)
    cells = np.flatnonzero(counts.sum(axis=1))
    return cells // m, cells % m, counts[cells].astype(float)


def ref_fit(i, j, counts, m, start=None):
    """Bradley-Terry by L-BFGS on the counts per pair, in rating points, with the settings of
    FastChat's `compute_bt` (summed log-likelihood, gtol 1e-6, at most 100 iterations);
    ratings centred on 1000."""
    import numpy as np
    from scipy import optimize, special

    alpha = math.log(10) / 400
    n = counts.sum(axis=1)
    s = counts[:, 0] + 0.5 * counts[:, 1]

    def objective(points):
        d = alpha * (points[i] - points[j])
        r = alpha * (n * special.expit(d) - s)
        grad = np.bincount(i, r, m) - np.bincount(j, r, m)
        return float(np.sum(n * np.logaddexp(0.0, d) - s * d)), grad

    x0 = np.zeros(m) if start is None else start - 1000
    options = {"maxiter": 100, "gtol": 1e-6}
    points = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B", options=options).x
    return points - points.mean() + 1000


def ref_elo(a, b, y, m):
    ratings = [1000.0] * m
    for ia, ib, s in zip(a.tolist(), b.tolist(), y.tolist(), strict=True):
        delta = 4.0 * (s - 1.0 / (1.0 + 10.0 ** ((ratings[ib] - ratings[ia]) / 400.0)))
        ratings[ia] += delta
        ratings[ib] -= delta
    return ratings


def ref_resample(a, b, y, m, rng, how: str):
    """One bootstrap sample as (i, j, counts): the battles drawn again with replacement
    (``battles``), or the same in distribution drawn on the counts per pair and outcome
    (``counts``: Multinomial(N, observed shares), O(cells) per round)."""
    if how == "battles":
        pick = rng.integers(0, a.size, a.size)
        return ref_counts(a[pick], b[pick], y[pick], m)
    i, j, counts = ref_counts(a, b, y, m)
    drawn = rng.multinomial(a.size, counts.ravel() / a.size).reshape(counts.shape)
    return i, j, drawn.astype(float)


def reference(path: Path, rounds: int, output: Path, seed: int, how: str) -> None:
    import numpy as np

    model_a, model_b, winner = ref_read(path)
    index: dict[str, int] = {}
    codes = np.array([index.setdefault(name, len(index)) for name in model_a + model_b])
    names, n, m = list(index), len(model_a), len(index)
    a, b = codes[:n], codes[n:]
    label = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "both_bad": 0.5, "tie (bothbad)": 0.5}
    y = np.array([label[w] for w in winner])
    keep = a != b
    a, b, y = a[keep], b[keep], y[keep]
    beta = ref_fit(*ref_counts(a, b, y, m), m)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, m))
    for r in range(rounds):
        samples[r] = ref_fit(*ref_resample(a, b, y, m, rng, how), m, start=beta)
    lower, upper = np.percentile(samples, [2.5, 97.5], axis=0)
    elo = ref_elo(a, b, y, m)
    rows = [
        {"model": str(names[k]), "rating": float(beta[k]), "elo": elo[k]}
        | {"ci_lower": float(lower[k]), "ci_upper": float(upper[k])}
        for k in np.argsort(-beta)
    ]
    output.write_text(json.dumps(rows))


# --------------------------------------------------------------------------- timing


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(command: list[str], repeat: int) -> tuple[float, float]:
    runs = [timed(command) for _ in range(repeat)]
    return min(runs)


def run_reference(args, data: Path, ours_out: Path, how: str) -> tuple[float, float, float]:
    """(wall, CPU) of the reference with one kind of bootstrap, and its largest rating
    difference from ours over models with 1,000 votes or more."""
    out = data.with_name(f"ref-{how}.json")
    command = [sys.executable, __file__, "--reference", str(data), "--output", str(out)]
    command += ["--ref-rounds", str(args.ref_rounds), "--seed", str(args.seed), "--how", how]
    wall, cpu = best(command, args.repeat)
    theirs = {r["model"]: r["rating"] for r in json.loads(out.read_text())}
    mine = {r["model"]: r for r in json.loads(ours_out.read_text())}
    gap = max(abs(mine[k]["rating"] - theirs[k]) for k in theirs if mine[k]["votes"] >= 1000)
    return wall, cpu, gap


def main() -> None:
    args = _args()
    if args.reference:
        reference(Path(args.reference), args.ref_rounds, Path(args.output), args.seed, args.how)
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    with tempfile.TemporaryDirectory() as tmp:
        data, ours_out = Path(tmp) / "battles.csv", Path(tmp) / "ours.json"
        source = write_battles(data, args.battles, args.seed, args.synthetic)
        command = [sys.executable, "manage.py", "compute_leaderboard", "--input", str(data)]
        ours = best(
            [*command, "--output", str(ours_out), "--bootstrap", str(args.rounds)], args.repeat
        )
        hows = ("counts", "battles") if args.ref_bootstrap == "both" else (args.ref_bootstrap,)
        refs = {how: run_reference(args, data, ours_out, how) for how in hows}
    for how, (wall, cpu, gap) in refs.items():
        per_round = (wall / args.ref_rounds) / (ours[0] / args.rounds)
        print(
            f"compute_leaderboard, {args.battles:,} battles ({source}): ours {ours[0]:.2f} s "
            f"({args.rounds} rounds), reference {wall:.2f} s ({args.ref_rounds} rounds, csv "
            f"module, {how} resampled), ratio {wall / ours[0]:.2f}x, per round "
            f"{per_round:.1f}x; CPU ours {ours[1]:.2f} s, reference {cpu:.2f} s "
            f"(ratio {cpu / ours[1]:.2f}x); largest rating difference {gap:.2f} points"
        )


if __name__ == "__main__":
    main()
