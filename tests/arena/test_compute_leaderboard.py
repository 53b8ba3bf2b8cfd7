"""`manage.py compute_leaderboard`: battle file in, leaderboard JSON out, no database."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

STRENGTHS = {"strong": 0.8, "middle": 0.0, "weak": -0.8}


def battle_rows(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    names = list(STRENGTHS)
    rows = []
    for _ in range(n):
        a, b = rng.choice(3, 2, replace=False)
        p = 1 / (1 + np.exp(STRENGTHS[names[b]] - STRENGTHS[names[a]]))
        u = rng.random()
        winner = "tie" if u < 0.1 else "model_a" if u < 0.1 + 0.9 * p else "model_b"
        rows.append((names[a], names[b], winner, "coding" if rng.random() < 0.5 else "chat"))
    return rows


@pytest.fixture
def battle_csv(tmp_path):
    path = tmp_path / "battles.csv"
    lines = ["model_a,model_b,winner,category"] + [",".join(r) for r in battle_rows()]
    lines.append("strong,rare,model_a,chat")  # a model with a single vote
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args):
    out = io.StringIO()
    call_command("compute_leaderboard", *args, stdout=out)
    return out.getvalue()


def test_compute_leaderboard_writes_models_sorted_by_rating_with_intervals(battle_csv, tmp_path):
    output = tmp_path / "board.json"
    message = run("--input", str(battle_csv), "--output", str(output), "--bootstrap", "200")
    rows = json.loads(output.read_text())
    assert [r["model"] for r in rows][:3] == ["strong", "middle", "weak"]
    assert {"model", "rating", "ci_lower", "ci_upper", "votes", "rank_ub", "elo"} <= set(rows[0])
    assert rows[0]["ci_method"] == "bootstrap" and rows[0]["rank_ub"] == 1
    assert rows[0]["ci_lower"] < rows[0]["rating"] < rows[0]["ci_upper"]
    assert np.mean([r["rating"] for r in rows]) == pytest.approx(1000.0, abs=1e-6)
    assert "4 models from 3001 battles" in message


def test_compute_leaderboard_hides_models_below_min_votes_and_pins_an_anchor(battle_csv, tmp_path):
    output = tmp_path / "board.json"
    run(
        "--input",
        str(battle_csv),
        "--output",
        str(output),
        "--bootstrap",
        "0",
        "--min-votes",
        "10",
        "--anchor",
        "middle=1200",
    )
    rows = {r["model"]: r for r in json.loads(output.read_text())}
    assert set(rows) == {"strong", "middle", "weak"}
    assert rows["middle"]["rating"] == pytest.approx(1200.0)
    assert rows["strong"]["ci_method"] == "sandwich"


def test_compute_leaderboard_rates_one_category(battle_csv, tmp_path):
    output = tmp_path / "board.json"
    run(
        "--input",
        str(battle_csv),
        "--output",
        str(output),
        "--category",
        "coding",
        "--bootstrap",
        "0",
    )
    votes = sum(r["votes"] for r in json.loads(output.read_text())) / 2
    coding = sum(1 for r in battle_rows() if r[3] == "coding")
    assert votes == coding


def test_compute_leaderboard_controls_for_style_and_reports_coefficients(tmp_path):
    rng = np.random.default_rng(1)
    lines = []
    for _ in range(2000):
        long_side = rng.random() < 0.5
        answers = ["word " * 200, "word " * 20] if long_side else ["word " * 20, "word " * 200]
        winner = (
            ("model_a" if long_side else "model_b")
            if rng.random() < 0.7
            else ("model_b" if long_side else "model_a")
        )
        pair = ["p", "q"] if rng.random() < 0.5 else ["q", "p"]
        lines.append(
            json.dumps(
                {
                    "model_a": pair[0],
                    "model_b": pair[1],
                    "winner": winner,
                    "conversation_a": [{"role": "assistant", "content": answers[0]}],
                    "conversation_b": [{"role": "assistant", "content": answers[1]}],
                }
            )
        )
    source, output = tmp_path / "b.jsonl", tmp_path / "board.json"
    source.write_text("\n".join(lines) + "\n")
    message = run("--input", str(source), "--output", str(output), "--style-control")
    assert "style coefficients" in message
    length = float(message.split("length_tokens ")[1].split(",")[0])
    assert length > 50  # the longer answer won 70% of the time
    rows = json.loads(output.read_text())
    assert rows[0]["ci_method"] == "sandwich"
    assert abs(rows[0]["rating"] - rows[1]["rating"]) < 20


def test_compute_leaderboard_refuses_a_bad_file_naming_the_line(tmp_path):
    source = tmp_path / "b.csv"
    source.write_text("model_a,model_b,winner\np,q,model_a\np,q,draw\n")
    with pytest.raises(CommandError, match="line 3: winner 'draw'"):
        run("--input", str(source), "--output", str(tmp_path / "o.json"))


def test_compute_leaderboard_refuses_a_malformed_anchor(battle_csv, tmp_path):
    with pytest.raises(CommandError, match="MODEL=RATING"):
        run("--input", str(battle_csv), "--output", str(tmp_path / "o.json"), "--anchor", "x")


def test_compute_leaderboard_refuses_style_control_without_style_columns(battle_csv, tmp_path):
    with pytest.raises(CommandError, match="--style-control needs"):
        run("--input", str(battle_csv), "--output", str(tmp_path / "o.json"), "--style-control")
