"""The compute_winrate command: AlpacaEval's leaderboard CSV from annotation files, with no
database, and a clear refusal (no traceback) for malformed input."""

from __future__ import annotations

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.support.shared_data import ALPACA_EVAL

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [
    "",
    "win_rate",
    "standard_error",
    "n_wins",
    "n_wins_base",
    "n_draws",
    "n_total",
    "discrete_win_rate",
    "avg_length",
    "length_controlled_winrate",
    "lc_standard_error",
]


def run_without_database(*args: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process whose database is a port nobody listens on."""
    env = {**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:9/nowhere"}
    return subprocess.run(
        [sys.executable, "manage.py", "compute_winrate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def annotations(model: str, prefs: list[float | None], rng: np.random.Generator) -> list[dict]:
    return [
        {
            "instruction": f"q{k}",
            "output_1": "x" * int(rng.integers(50, 150)),
            "generator_1": "base",
            "output_2": "y" * int(rng.integers(20, 200)),
            "generator_2": model,
            "preference": p,
        }
        for k, p in enumerate(prefs)
    ]


def test_compute_winrate_writes_one_row_per_model_best_first(tmp_path):
    rng = np.random.default_rng(0)
    strong = [float(p) for p in 1 + rng.beta(4, 2, 60)]
    weak = [float(p) for p in 1 + rng.beta(2, 4, 60)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "weak.json").write_text(json.dumps(annotations("weak", weak, rng)))
    (tmp_path / "in" / "strong.json.gz").write_bytes(
        gzip.compress(json.dumps(annotations("strong", strong, rng)).encode())
    )
    out = tmp_path / "lb.csv"
    call_command("compute_winrate", "--input", str(tmp_path / "in"), "--output", str(out))
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == ["strong", "weak"]
    assert float(rows[1][1]) == pytest.approx((np.mean(strong) - 1) * 100)
    assert int(rows[1][6]) == 60


def test_compute_winrate_refuses_a_missing_input():
    with pytest.raises(CommandError, match="no such file or folder"):
        call_command("compute_winrate", "--input", "/nonexistent.json", "--output", "/tmp/x.csv")


def test_malformed_input_exits_non_zero_naming_file_and_record_without_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    rows = annotations("m", [1.2, 2.7], np.random.default_rng(0))
    bad.write_text(json.dumps(rows))
    result = run_without_database("--input", str(bad), "--output", str(tmp_path / "o.csv"))
    assert result.returncode != 0
    assert "bad.json: record [1]: preference 2.7 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.skipif(not ALPACA_EVAL.exists(), reason="shared AlpacaEval data absent")
def test_compute_winrate_reproduces_the_published_rows_from_the_four_files_without_database(
    tmp_path,
):
    files = sorted(str(p) for p in ALPACA_EVAL.glob("*.annotations.json.gz"))
    out = tmp_path / "lb.csv"
    result = run_without_database("--input", *files, "--output", str(out))
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as handle:
        ours = {r[""]: r for r in csv.DictReader(handle)}
    with (ALPACA_EVAL / "published_leaderboard_rows.csv").open(newline="") as handle:
        published = list(csv.DictReader(handle))
    assert list(ours) == [r[""] for r in published]  # the published order, by LC
    for row in published:
        mine = ours[row[""]]
        for name in ("n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"):
            assert mine[name] == row[name], name
        for name in ("win_rate", "standard_error", "discrete_win_rate"):
            assert float(mine[name]) == pytest.approx(float(row[name]), rel=1e-12), name
        assert float(mine["lc_standard_error"]) > 0
