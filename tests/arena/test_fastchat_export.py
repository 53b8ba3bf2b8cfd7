"""The arena export read by FastChat's own leaderboard code (the `fschat` package, installed for
the tests only), and the export's `conv_metadata` read back by our import and style control."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from arena import battle_io
from arena.models import Battle, BattleTurn, Contestant, Generation, GenerationStatus

STRENGTHS = {"alpha": 1.2, "beta": 0.4, "gamma": -0.4, "delta": -1.2}
FASTCHAT_WINNERS = {"model_a", "model_b", "tie", "tie (bothbad)"}
SIDE_GROUPS = {
    "header_count": {"h1", "h2", "h3", "h4", "h5", "h6"},
    "list_count": {"ordered", "unordered"},
    "bold_count": {"**", "__"},
}
SHARED = {
    "sum_user_tokens",
    "sum_assistant_a_tokens",
    "sum_assistant_b_tokens",
    "context_a_tokens",
    "context_b_tokens",
    "turns",
}
ANSWER = "## Plan\n**First** step\n1. one\n2. two\n- three\n```\n# not a header\n```\n"


def _answer(name: str, rng) -> str:
    """Stronger models write more markdown: style and strength go together, as in the wild."""
    bold = int(rng.integers(0, 3)) + (2 if STRENGTHS[name] > 0 else 0)
    return "# Answer\n" + "**point** words here\n" * bold + "- item\n" * int(rng.integers(0, 4))


def _records(n: int = 900, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    names = list(STRENGTHS)
    records = []
    for _ in range(n):
        a, b = (names[k] for k in rng.choice(4, 2, replace=False))
        p = 1 / (1 + np.exp(STRENGTHS[b] - STRENGTHS[a]))
        u = rng.random()
        winner = (
            "tie"
            if u < 0.06
            else "both_bad"
            if u < 0.1
            else "model_a"
            if u < 0.1 + 0.9 * p
            else "model_b"
        )
        question = [{"role": "user", "content": "Explain the plan, please."}]
        records.append(
            {
                "model_a": a,
                "model_b": b,
                "winner": winner,
                "conversation_a": question + [{"role": "assistant", "content": _answer(a, rng)}],
                "conversation_b": question + [{"role": "assistant", "content": _answer(b, rng)}],
            }
        )
    return records


@pytest.fixture
def imported(db, tmp_path):
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    assert battle_io.battles_import(path=path) == 900
    return path


def _voted_battle() -> Battle:
    """A battle voted here, with its conversation: one turn, both answers, both bad."""
    a, b = (
        Contestant.objects.create(name=n, display_name=n, backend="external", is_active=False)
        for n in ("voted-a", "voted-b")
    )
    messages = [{"role": "user", "content": "Make a plan"}]
    battle = Battle.objects.create(
        contestant_a=a, contestant_b=b, winner="both_bad", voted_at=timezone.now()
    )
    sides = [
        Generation.objects.create(
            contestant=c, messages=messages, output=text, status=GenerationStatus.SUCCEEDED
        )
        for c, text in ((a, ANSWER), (b, "Plain words only."))
    ]
    BattleTurn.objects.create(
        battle=battle,
        index=0,
        user_message="Make a plan",
        generation_a=sides[0],
        generation_b=sides[1],
    )
    return battle


def _export(tmp_path) -> list[dict]:
    out = tmp_path / "export.json"
    call_command("export_dataset", "--format", "arena", "--output", str(out), stdout=io.StringIO())
    return json.loads(out.read_text())  # one JSON array


def test_the_export_is_one_json_array_with_fastchat_winners_and_conv_metadata(
    imported, tmp_path, researcher_client
):
    voted = _voted_battle()
    rows = _export(tmp_path)
    assert len(rows) == 901
    assert {r["winner"] for r in rows} == FASTCHAT_WINNERS  # both_bad is written FastChat's way
    for row in rows:
        meta = row["conv_metadata"]
        assert set(meta) == SHARED | {f"{g}_{s}" for g in SIDE_GROUPS for s in "ab"}
        assert all(set(meta[f"{g}_{s}"]) == keys for g, keys in SIDE_GROUPS.items() for s in "ab")
    mine = next(r for r in rows if r["question_id"] == str(voted.public_id))
    meta = mine["conv_metadata"]
    assert mine["winner"] == "tie (bothbad)"
    assert meta["header_count_a"] == {"h1": 0, "h2": 1, "h3": 0, "h4": 0, "h5": 0, "h6": 0}
    assert meta["list_count_a"] == {"ordered": 2, "unordered": 1}  # the code block is not prose
    assert meta["bold_count_a"] == {"**": 1, "__": 0}
    assert meta["sum_assistant_b_tokens"] == 4 and meta["turns"] == 1
    assert meta["context_a_tokens"] == meta["sum_user_tokens"] == 3
    # An imported battle: its stored style totals and the exported counts agree.
    stored = Battle.objects.exclude(pk=voted.pk).order_by("pk").first()
    row = next(r for r in rows if r["question_id"] == str(stored.public_id))
    assert row["conv_metadata"]["sum_assistant_a_tokens"] == stored.style_a["length_tokens"]
    assert sum(row["conv_metadata"]["bold_count_b"].values()) == stored.style_b["bold"]
    # Parquet carries the same nested layout.
    import pyarrow.parquet as pq

    parquet = tmp_path / "export.parquet"
    call_command(
        "export_dataset", "--format", "arena", "--output", str(parquet), stdout=io.StringIO()
    )
    table = pq.read_table(parquet).to_pylist()
    assert (
        next(r for r in table if r["question_id"] == mine["question_id"])["conv_metadata"] == meta
    )
    # The page's download gives the same array.
    response = researcher_client.get("/arena/battle-files/export/?format=json")
    assert response["Content-Type"] == "application/json"
    page = json.loads(b"".join(response.streaming_content))
    assert sorted(r["question_id"] for r in page) == sorted(r["question_id"] for r in rows)


def test_fastchat_leaderboard_code_reads_the_export_and_ranks_as_we_do(imported, tmp_path):
    pd = pytest.importorskip("pandas")
    elo_analysis = pytest.importorskip("fastchat.serve.monitor.elo_analysis")
    out = tmp_path / "export.json"
    call_command("export_dataset", "--format", "arena", "--output", str(out), stdout=io.StringIO())
    battles = pd.read_json(out)  # as FastChat's own command line reads a clean_battle file
    np.random.seed(0)
    results = elo_analysis.report_elo_analysis_results(battles, rating_system="bt", num_bootstrap=4)
    theirs = results["elo_rating_final"]
    assert set(results["elo_rating_online"]) == set(STRENGTHS)
    board = tmp_path / "board.json"
    call_command(
        "compute_leaderboard",
        "--input",
        str(out),
        "--output",
        str(board),
        "--bootstrap",
        "0",
        stdout=io.StringIO(),
    )
    ours = {row["model"]: row["rating"] for row in json.loads(board.read_text())}
    assert list(theirs.index) == list(ours) == list(STRENGTHS)
    # The same Bradley-Terry model (FastChat's has a light L2 penalty): ratings agree closely.
    gaps = [(ours[m] - ours["delta"]) - (theirs[m] - theirs["delta"]) for m in STRENGTHS]
    assert max(abs(g) for g in gaps) < 15


def test_the_export_reads_back_into_our_import_and_style_control(imported, tmp_path):
    rows = _export(tmp_path)

    def kept() -> list[str]:
        return sorted(
            json.dumps([b.winner, b.style_a], sort_keys=True) for b in Battle.objects.all()
        )

    stored = kept()
    board = tmp_path / "board.json"
    out = io.StringIO()
    call_command(
        "compute_leaderboard",
        "--input",
        str(tmp_path / "export.json"),
        "--output",
        str(board),
        "--style-control",
        stdout=out,
    )
    assert "style coefficients" in out.getvalue()
    Battle.objects.all().delete()
    assert battle_io.battles_import(path=tmp_path / "export.json") == len(rows)
    assert kept() == stored  # tie (bothbad) is stored as both_bad; the breakdown is kept
    style = Battle.objects.first().style_a
    assert style["header_count"]["h1"] == 1 and set(style["bold_count"]) == {"**", "__"}
