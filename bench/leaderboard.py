"""Benchmark of the leaderboard maths (arena/ratings/); prints figures, asserts nothing.

    python bench/leaderboard.py [--sizes 100000,1000000] [--rounds 1000] [--ref-rounds 20]

Synthetic battles come from known strengths: 50 models, skewed (Zipf-like) pair sampling and
Davidson ties (about 11%). With ties counted as half a win, Bradley-Terry estimates a slightly
compressed version of the Davidson strengths, so accuracy is measured against that target: the
Bradley-Terry fit to the *expected* counts of the same design ("truth" below). A second outcome
column adds a known length effect (plain logistic, no ties) for the style-controlled fit.

Timings are the best of --repeat runs (wall clock). Memory is the tracemalloc peak of a separate
run of the same step: Python and NumPy allocations, which is what the step adds on top of its
inputs. The process's ru_maxrss is printed at the end. BLAS runs with --threads threads (default
1, as the workers run); set before NumPy loads.

The reference is what a plain implementation does: per-battle logistic regression with SciPy's
L-BFGS on the unaggregated battles, and a bootstrap that resamples battles and refits; its
bootstrap is timed over --ref-rounds rounds and extrapolated to --rounds.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="battle counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    parser.add_argument("--ref-rounds", type=int, default=20, help="reference bootstrap rounds")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="timing runs; the best is shown")
    parser.add_argument("--threads", default="1", help="BLAS threads ('keep' leaves env alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real",
        default=str(
            Path(__file__).resolve().parents[2]
            / "shared/data/arena_human_preference_140k_votes.csv.gz"
        ),
        help="real arena votes (skipped when absent)",
    )
    return parser.parse_args()


ARGS = _args()
if ARGS.threads != "keep":
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = ARGS.threads
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy import optimize, special, stats  # noqa: E402

from arena import ratings as R  # noqa: E402
from arena.battle_files import read_battles  # noqa: E402

TIE_NU = 0.27  # Davidson tie parameter: ~11% ties under this design
STYLE_GAMMA = 0.3  # log-odds per SD of the normalised length difference


# --------------------------------------------------------------------------- synthetic data


def design(m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True strengths (M,), pair probabilities (M, M) and per-model style rates (M, 4): tokens,
    headers, list items and bold spans per answer, drawn independently of each other."""
    strengths = rng.normal(0.0, 0.6, m)  # natural units: sd ~100 rating points
    popularity = 1.0 / np.arange(1, m + 1) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    pair = np.outer(popularity, popularity)
    np.fill_diagonal(pair, 0.0)
    style = rng.lognormal(np.log([300.0, 3.0, 6.0, 4.0]), 0.5, (m, 4))
    return strengths, pair / pair.sum(), style


def davidson(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(first wins), P(tie) for log-strength differences d."""
    half = np.exp(d / 2)
    denom = half + 1 / half + TIE_NU
    return half / denom, TIE_NU / denom


def simulate(n: int, strengths, pair, style, rng) -> dict[str, np.ndarray]:
    m = strengths.size
    flat = rng.choice(m * m, size=n, p=pair.ravel())
    a, b = flat // m, flat % m
    win, tie = davidson(strengths[a] - strengths[b])
    u = rng.random(n)
    y = np.where(u < win, 1.0, np.where(u < win + tie, 0.5, 0.0))
    feats = [rng.poisson(style[side]).astype(np.float64) for side in (a, b)]  # (N, 4) each
    diff = R.style_difference(feats[0][:, :1], feats[1][:, :1])[:, 0]
    x = (diff - diff.mean()) / diff.std()
    logit = strengths[a] - strengths[b] + STYLE_GAMMA * x
    y_style = (rng.random(n) < special.expit(logit)).astype(np.float64)
    return {"a": a, "b": b, "y": y, "fa": feats[0], "fb": feats[1], "y_style": y_style}


def bt_target(strengths: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Ratings the tie-as-half Bradley-Terry fit converges to under this design."""
    i, j = np.triu_indices(strengths.size, 1)
    weight = (pair[i, j] + pair[j, i]) * 1e6
    win, tie = davidson(strengths[i] - strengths[j])
    models = [str(k) for k in range(strengths.size)]
    table = R.CountTable(models, i, j, weight * win, weight * tie, weight * (1 - win - tie))
    return R.bradley_terry(table).ratings


# --------------------------------------------------------------------------- measurement


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def measure(label: str, fn, repeat: int) -> tuple[float, float, object]:
    seconds, out = best_time(fn, repeat)
    mb = peak_mb(fn)
    print(f"  {label:<38} {seconds:8.3f} s  {mb:8.1f} MB")
    return seconds, mb, out


# --------------------------------------------------------------------------- reference


def reference_fit(a, b, y, m, weights=None, x0=None) -> np.ndarray:
    """Per-battle logistic regression with SciPy (the plain way: no aggregation)."""
    w = np.ones(a.size) if weights is None else weights
    total = w.sum()

    def objective(beta):
        d = beta[a] - beta[b]
        r = w * (special.expit(d) - y)
        grad = np.bincount(a, r, m) - np.bincount(b, r, m)
        return float(w @ (np.logaddexp(0, d) - y * d)) / total, grad / total

    start = np.zeros(m) if x0 is None else x0
    res = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-15},
    )
    return 1000 + (res.x - res.x.mean()) / R.NAT


def reference_bootstrap(a, b, y, m, rounds, rng, x0) -> np.ndarray:
    samples = np.empty((rounds, m))
    for r in range(rounds):
        weights = np.bincount(rng.integers(0, a.size, a.size), minlength=a.size).astype(float)
        samples[r] = reference_fit(a, b, y, m, weights, x0)
    return samples


# --------------------------------------------------------------------------- runs


def run_size(n: int, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, float]:
    strengths, pair, style = design(args.models, rng)
    data = simulate(n, strengths, pair, style, rng)
    a, b, y = data["a"], data["b"], data["y"]
    models = [str(k) for k in range(args.models)]
    truth = bt_target(strengths, pair)
    print(f"\n== {n:,} synthetic battles, {args.models} models, ties {np.mean(y == 0.5):.1%}")
    out: dict[str, float] = {"n": n}

    def fit():
        table = R.aggregate(a, b, y, models)
        return table, R.bradley_terry(table)

    out["fit_s"], out["fit_mb"], (table, bt) = measure(
        "aggregate + Bradley-Terry fit", fit, args.repeat
    )
    out["sand_s"], out["sand_mb"], sandwich = measure(
        "sandwich CIs", lambda: R.sandwich_ci(bt, table), args.repeat
    )

    def fit_and_sandwich():
        t, f = fit()
        return R.sandwich_ci(f, t)

    out["fs_s"], out["fs_mb"], _ = measure(
        "fit + sandwich (end to end)", fit_and_sandwich, args.repeat
    )
    out["boot_s"], out["boot_mb"], boot = measure(
        f"bootstrap, {args.rounds} rounds",
        lambda: R.bootstrap_ci(bt, table, rounds=args.rounds),
        args.repeat,
    )
    out["style_s"], out["style_mb"], style = measure(
        "style-controlled fit (4 features)",
        lambda: R.style_control(a, b, data["y_style"], data["fa"], data["fb"], models=models),
        args.repeat,
    )
    out["style_sand_s"], _, style_ci = measure(
        "style sandwich CIs", lambda: R.style_sandwich_ci(style), 1
    )
    out["elo_s"], _, _ = measure("online Elo (sequential)", lambda: R.elo_online(a, b, y), 1)
    report_accuracy(bt, sandwich, boot, truth, strengths, out)
    report_style(style, style_ci, strengths, data, models, out)
    run_reference(a, b, y, args, bt, out, rng)
    return out


def report_accuracy(bt, sandwich, boot, truth, strengths, out) -> None:
    err = bt.ratings - truth
    out["spearman"] = stats.spearmanr(bt.ratings, truth).statistic
    out["max_err"] = float(np.abs(err).max())
    out["cover_sand"] = float(np.mean((sandwich.lower <= truth) & (truth <= sandwich.upper)))
    out["cover_boot"] = float(np.mean((boot.lower <= truth) & (truth <= boot.upper)))
    width = np.median(boot.upper - boot.lower) / np.median(sandwich.upper - sandwich.lower)
    print(
        f"  accuracy vs truth: Spearman {out['spearman']:.4f} "
        f"(vs raw Davidson strengths {stats.spearmanr(bt.ratings, strengths).statistic:.4f}), "
        f"max |error| {out['max_err']:.2f} pts, median |error| {np.median(np.abs(err)):.2f} pts"
    )
    print(
        f"  95% CI coverage of truth: sandwich {out['cover_sand']:.0%}, "
        f"bootstrap {out['cover_boot']:.0%}; median width bootstrap/sandwich {width:.3f}"
    )
    print(f"  convergence: ||grad|| {bt.grad_norm:.1e} after {bt.iterations} iterations")


def report_style(style, style_ci, strengths, data, models, out) -> None:
    truth = 1000 + (strengths - strengths.mean()) / R.NAT
    plain = R.bradley_terry(R.aggregate(data["a"], data["b"], data["y_style"], models))
    cover = np.mean((style_ci.lower <= truth) & (truth <= style_ci.upper))
    se = R.style_coefficient_se(style)[0]
    print(
        f"  style control: length coefficient {style.coefficients[0]:.3f} +- {se:.3f} "
        f"(true {STYLE_GAMMA}), max |error| {np.abs(style.ratings - truth).max():.2f} pts "
        f"(plain BT on the same votes: {np.abs(plain.ratings - truth).max():.2f}), "
        f"CI coverage {cover:.0%}"
    )


def run_reference(a, b, y, args, bt, out, rng) -> None:
    start = time.perf_counter()
    ref = reference_fit(a, b, y, args.models)
    out["ref_fit_s"] = time.perf_counter() - start
    x0 = (ref - 1000) * R.NAT
    rounds = max(1, args.ref_rounds)
    start = time.perf_counter()
    reference_bootstrap(a, b, y, args.models, rounds, rng, x0)
    per_round = (time.perf_counter() - start) / rounds
    out["ref_boot_s"] = per_round * args.rounds
    print(
        f"  reference per-battle fit {out['ref_fit_s']:8.3f} s  "
        f"(max |diff| to ours {np.abs(ref - bt.ratings).max():.1e} pts)"
    )
    print(
        f"  reference bootstrap: {per_round:.3f} s/round over {rounds} rounds -> "
        f"{out['ref_boot_s']:.1f} s extrapolated to {args.rounds}"
    )
    print(
        f"  speed-up: fit {out['ref_fit_s'] / out['fit_s']:.0f}x, "
        f"bootstrap {out['ref_boot_s'] / out['boot_s']:.0f}x"
    )


def run_real(path: Path, args: argparse.Namespace) -> None:
    if not path.exists():
        print(f"\n== real votes: {path} absent, skipped")
        return
    start = time.perf_counter()
    battles = read_battles(path)
    read_s = time.perf_counter() - start
    print(f"\n== real arena votes ({len(battles):,} battles, {len(battles.models)} models)")
    print(f"  {'read file':<38} {read_s:8.3f} s")
    table = R.aggregate(battles.model_a, battles.model_b, battles.outcome, battles.models)

    def fit_and_sandwich():
        t = R.aggregate(battles.model_a, battles.model_b, battles.outcome, battles.models)
        f = R.bradley_terry(t)
        return f, R.sandwich_ci(f, t)

    _, _, (bt, _) = measure("aggregate + fit + sandwich", fit_and_sandwich, args.repeat)
    boot_s, _, boot = measure(
        f"bootstrap, {args.rounds} rounds",
        lambda: R.bootstrap_ci(bt, table, rounds=args.rounds),
        args.repeat,
    )
    for k in np.argsort(-bt.ratings)[:5]:
        print(
            f"  {bt.models[k]:<34} {bt.ratings[k]:8.2f}  "
            f"[{boot.lower[k]:7.2f}, {boot.upper[k]:7.2f}]  votes {int(bt.votes[k])}"
        )


def summary(results: list[dict[str, float]], args: argparse.Namespace) -> None:
    print("\n== summary")
    print(
        f"  {'battles':>10} {'fit+sand s':>10} {'MB':>6} {'boot s':>7} {'MB':>6} "
        f"{'style s':>8} {'rho':>7} {'maxerr':>7} {'cover':>6} {'fit x':>6} {'boot x':>7}"
    )
    for r in results:
        print(
            f"  {r['n']:>10,} {r['fs_s']:>10.3f} {r['fs_mb']:>6.0f} {r['boot_s']:>7.3f} "
            f"{r['boot_mb']:>6.0f} {r['style_s']:>8.3f} {r['spearman']:>7.4f} "
            f"{r['max_err']:>7.2f} {r['cover_sand']:>6.0%} "
            f"{r['ref_fit_s'] / r['fit_s']:>6.0f} {r['ref_boot_s'] / r['boot_s']:>7.0f}"
        )
    big = max(results, key=lambda r: r["n"])
    checks = [
        (f"fit + sandwich < 1 s at {big['n']:,}", big["fs_s"] < 1.0),
        (f"fit + sandwich < 300 MB at {big['n']:,}", big["fs_mb"] < 300),
        (f"{args.rounds} bootstrap rounds < 2 s at {big['n']:,}", big["boot_s"] < 2.0),
    ]
    for label, ok in checks:
        print(f"  target {label:<44} {'met' if ok else 'MISSED'}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  process peak RSS (ru_maxrss, whole run incl. data) {rss:.0f} MB; "
        f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; "
        f"CPUs {os.cpu_count()}"
    )


def main() -> None:
    rng = np.random.default_rng(ARGS.seed)
    sizes = [int(s) for s in ARGS.sizes.split(",") if s]
    results = [run_size(n, ARGS, rng) for n in sizes]
    run_real(Path(ARGS.real), ARGS)
    summary(results, ARGS)


if __name__ == "__main__":
    main()
