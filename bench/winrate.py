"""Benchmark of the evaluation metrics (evaluation/metrics/); prints figures, asserts nothing.

    python bench/winrate.py [--models 50] [--instructions 805] [--repeat 3] [--threads 1]

1. The four real AlpacaEval 2.0 annotation files (shared/data/alpaca_eval, skipped when
   absent): the whole of what ``manage.py compute_winrate`` does (read the gzip JSON, fit,
   write the CSV) timed, and the LC values beside the published ones.
2. A synthetic leaderboard drawn from the length-controlled GLM itself: --models contestants on
   --instructions instructions, each with a bias, a length coefficient and a verbosity (a log
   length ratio to the baseline), instruction difficulties N(0, 1), and a hard verdict per pair
   (1 or 2, with ~2% draws) drawn from the model's probability. Truth is each contestant's
   probability of beating the baseline at equal length, averaged over instructions. Printed:
   the fit's time, and the Spearman correlation with the true ranking of the LC win rates and,
   for contrast, of the raw win rates.

Timings are the best of --repeat runs (wall clock), BLAS with --threads threads (set before
NumPy loads).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--instructions", type=int, default=805)
    parser.add_argument("--repeat", type=int, default=3, help="timing runs; the best is shown")
    parser.add_argument("--threads", default="1", help="BLAS threads ('keep' leaves env alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real",
        default=str(
            Path(
                os.environ.get("SHARED_DATA_DIR")
                or Path(__file__).resolve().parents[2] / "shared" / "data"
            )
            / "alpaca_eval"
        ),
        help="folder of the real AlpacaEval annotations (skipped when absent)",
    )
    return parser.parse_args()


ARGS = _args()
if ARGS.threads != "keep":
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = ARGS.threads
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import csv  # noqa: E402

import numpy as np  # noqa: E402
from scipy import special  # noqa: E402

from evaluation import alpaca_formats  # noqa: E402
from evaluation.metrics import (  # noqa: E402
    Judgments,
    leaderboard,
    length_feature,
    rank_correlation,
    win_rate,
)


def best_of(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def compute_winrate(paths: list[Path], output: Path) -> list:
    """What the management command does, without Django."""
    annotations = alpaca_formats.read_annotation_files(paths)
    judgments, baseline, instructions = alpaca_formats.annotations_to_judgments(annotations)
    rows = leaderboard(judgments, baseline=baseline, n_instructions=len(instructions))
    alpaca_formats.write_leaderboard_csv(output, rows)
    return rows


def real_files(folder: Path) -> None:
    files = sorted(folder.glob("*.annotations.json.gz"))
    if not files:
        print(f"real data: {folder} absent, skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        seconds, rows = best_of(lambda: compute_winrate(files, Path(tmp) / "lb.csv"), ARGS.repeat)
    published = {}
    with (folder / "published_leaderboard_rows.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            published[row[""]] = float(row["length_controlled_winrate"])
    print(f"real data: {len(files)} files, compute_winrate end to end {seconds:.2f} s")
    print(f"  {'model':30s} {'raw':>6s} {'LC':>6s} {'+-':>5s} {'published LC':>13s}")
    for r in rows:
        print(
            f"  {r.model:30s} {r.win_rate:6.2f} {r.length_controlled_winrate:6.2f} "
            f"{r.lc_standard_error:5.2f} {published.get(r.model, float('nan')):13.2f}"
        )
    ours = [r.length_controlled_winrate for r in rows if r.model in published]
    theirs = [published[r.model] for r in rows if r.model in published]
    print(f"  Spearman(LC, published LC) = {rank_correlation(ours, theirs):.3f}")


def synthetic(m: int, n: int, seed: int) -> tuple[list[Judgments], np.ndarray]:
    rng = np.random.default_rng(seed)
    gamma = rng.normal(0.0, 1.0, n)  # (I,)
    base_len = np.exp(rng.normal(7.0, 0.5, n))  # (I,) characters
    bias = rng.normal(-0.5, 1.0, m)  # (M,)
    slope = rng.uniform(0.0, 2.5, m)  # (M,) how much the judge rewards this model's length
    verbosity = rng.normal(0.0, 0.6, m)  # (M,)
    judgments, truth = [], np.empty(m)
    for k in range(m):
        length = base_len * np.exp(verbosity[k] + rng.normal(0.0, 0.4, n))  # (I,)
        p = special.expit(bias[k] + slope[k] * length_feature(length, base_len) + gamma)
        pref = 1.0 + (rng.random(n) < p)  # (I,) hard verdicts
        pref[rng.random(n) < 0.02] = 1.5
        judgments.append(Judgments(f"model-{k:02d}", np.arange(n), pref, length, base_len))
        truth[k] = special.expit(bias[k] + gamma).mean() * 100
    return judgments, truth


def synthetic_leaderboard() -> None:
    m, n = ARGS.models, ARGS.instructions
    judgments, truth = synthetic(m, n, ARGS.seed)
    seconds, rows = best_of(lambda: leaderboard(judgments, n_instructions=n), ARGS.repeat)
    by_model = {r.model: r for r in rows}
    lc = [by_model[j.model].length_controlled_winrate for j in judgments]
    raw = [win_rate(j.preference).win_rate for j in judgments]
    err = np.abs(np.array(lc) - truth)
    print(f"synthetic: {m} models x {n} instructions, leaderboard (raw + LC) {seconds:.2f} s")
    print(f"  Spearman(LC, truth)  = {rank_correlation(lc, truth):.3f}")
    print(f"  Spearman(raw, truth) = {rank_correlation(raw, truth):.3f}")
    print(f"  |LC - truth|: median {np.median(err):.2f}, max {err.max():.2f} points")
    se = np.array([by_model[j.model].lc_standard_error for j in judgments])
    print(f"  share of models with truth within LC +- 1.96 SE: {np.mean(err <= 1.96 * se):.2f}")


def main() -> None:
    real_files(Path(ARGS.real))
    synthetic_leaderboard()


if __name__ == "__main__":
    main()
