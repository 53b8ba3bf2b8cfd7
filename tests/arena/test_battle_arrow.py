"""The Arrow fast path of the battle file reader: the same battles as the row-by-row reader,
the same errors (naming the line), and a leaderboard command that loads no heavy module it
does not use."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from arena import battle_arrow, battle_files

HEADER = "id,model_a,model_b,winner,math.math,if.if,if.score,category\n"
ROWS = [
    "1,alpha,beta,model_a,1,0,3,chat",
    "2,beta,gamma,model_b,0,1,0,code",
    "3,gamma,alpha,tie,true,False,5,chat",
    "4,alpha,gamma,both_bad,yes,no,1,chat",
    "5,beta,alpha,tie (bothbad),0,1,2,code",
]


def _same(fast: battle_files.Battles, slow: battle_files.Battles) -> None:
    assert fast.models == slow.models
    for name in ("model_a", "model_b", "outcome", "both_bad", "category"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
    assert sorted(fast.flags) == sorted(slow.flags)
    assert all(np.array_equal(fast.flags[k], slow.flags[k]) for k in slow.flags)


def _csv(tmp_path: Path, rows: list[str], name: str = "battles.csv") -> Path:
    path = tmp_path / name
    text = HEADER + "\n".join(rows) + "\n"
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["battles.csv", "battles.csv.gz"])
def test_arrow_reads_csv_as_the_row_reader_does(tmp_path, name):
    path = _csv(tmp_path, ROWS * 3, name)
    fast = battle_arrow.read(path, ".csv", battle_files.Checks())
    assert fast is not None and len(fast) == 15
    _same(fast, battle_files._read_csv(path, battle_files.Checks()))
    _same(battle_files.read_battles(path), fast)
    assert fast.both_bad.tolist()[:5] == [False, False, False, True, True]
    assert fast.category_mask("math").tolist()[:5] == [True, False, True, True, False]


def test_arrow_reads_json_lines_with_nested_category_tags(tmp_path):
    records = [
        {
            "model_a": a,
            "model_b": b,
            "winner": w,
            "category_tag": {"math_v0.1": {"math": m}, "if_v0.1": {"if": not m, "score": 3}},
        }
        for a, b, w, m in [("p", "q", "model_a", True), ("q", "r", "tie (bothbad)", False)] * 4
    ]
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    fast = battle_arrow.read(path, ".jsonl", battle_files.Checks())
    assert fast is not None
    with battle_files._open_text(path) as handle:
        slow = battle_files._read_json(battle_files._json_lines(handle), battle_files.Checks())
    assert sorted(fast.flags) == ["if.if", "math.math"]
    fast = replace(fast, category=np.zeros(len(fast), str))
    _same(fast, replace(slow, category=np.zeros(len(slow), str)))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("6,alpha,beta,maybe,0,0,0,chat", r"line 7: winner 'maybe' is not"),
        ("6,,beta,model_a,0,0,0,chat", "line 7: model_a is empty"),
        ("6,alpha,beta,model_a,2,0,0,chat", r"line 7: category flag math.math='2' is not 0/1"),
        ("6,alpha,beta,model_a,0", "line 7: expected 8 fields, got 5"),
    ],
)
def test_a_bad_row_is_named_by_its_line_as_before(tmp_path, row, message):
    path = _csv(tmp_path, [*ROWS, row, *ROWS])
    assert battle_arrow.read(path, ".csv", battle_files.Checks()) is None  # left to the row reader
    with pytest.raises(ValueError, match=message):
        battle_files.read_battles(path)


def test_the_checks_of_an_import_hold_on_the_fast_path(tmp_path):
    path = _csv(tmp_path, [*ROWS, "6,alpha,alpha,model_a,0,0,0,chat"])
    skip = replace(battle_files.STORE_CHECKS, self_battles="skip")
    assert len(battle_arrow.read(path, ".csv", skip)) == 5
    with pytest.raises(ValueError, match="line 7: 'alpha' cannot battle itself"):
        battle_files.read_battles(path, checks=battle_files.STORE_CHECKS)
    bad_name = _csv(tmp_path, [*ROWS, "6,alpha,no good name!,model_a,0,0,0,chat"], "names.csv")
    assert battle_arrow.read(bad_name, ".csv", battle_files.Checks()) is not None
    with pytest.raises(ValueError, match="line 7: model_b 'no good name!' is not a model name"):
        battle_files.read_battles(bad_name, checks=battle_files.STORE_CHECKS)


def test_files_with_style_columns_go_to_the_row_reader(tmp_path):
    path = tmp_path / "styled.csv"
    path.write_text('model_a,model_b,winner,response_a,response_b\np,q,model_a,"# Hi\n**x**",no\n')
    assert battle_arrow.read(path, ".csv", battle_files.Checks()) is None
    battles = battle_files.read_battles(path)
    assert battles.features_a.tolist() == [[7.0, 1.0, 0.0, 1.0]]  # "#", "Hi", 4 "*", "x"


def test_compute_leaderboard_loads_neither_scipy_stats_nor_pandas(tmp_path):
    path = _csv(tmp_path, ROWS * 20)
    script = (
        "import sys, django; django.setup()\n"
        "from django.core.management import call_command\n"
        f"call_command('compute_leaderboard', '--input', {str(path)!r}, "
        f"'--output', {str(tmp_path / 'o.json')!r}, '--bootstrap', '20')\n"
        "print(sorted(m for m in ('scipy.stats', 'pandas') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert [r["model"] for r in json.loads((tmp_path / "o.json").read_text())]


def test_without_categories_the_fast_path_reads_only_models_and_winners(tmp_path):
    path = _csv(tmp_path, ROWS * 2)
    lean = battle_files.read_battles(path, categories=False)
    assert lean.flags == {} and lean.category is None
    _same(
        replace(lean, flags={}), replace(battle_files.read_battles(path), flags={}, category=None)
    )
    maths = battle_files.read_battles(path, category="math", categories=False)
    assert len(maths) == 6  # a category asked for is read
