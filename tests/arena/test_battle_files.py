"""Reading public arena battle files: formats, categories, style columns, and refusals that name
the offending line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from arena.battle_files import read_battles
from tests.support.shared_data import ARENA_VOTES as VOTES_CSV

CRITERIA = (
    "complexity creativity domain_knowledge problem_solving real_world specificity "
    "technical_accuracy"
).split()


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_read_battles_maps_winner_labels_to_outcomes_and_codes_models(tmp_path):
    path = write(
        tmp_path / "b.csv",
        (
            "id,model_a,model_b,winner\n"
            "1,alpha,beta,model_a\n2,beta,gamma,model_b\n3,gamma,alpha,tie\n"
            "4,alpha,gamma,both_bad\n5,beta,alpha,tie (bothbad)\n"
        ),
    )
    battles = read_battles(path)
    assert battles.models == ["alpha", "beta", "gamma"]
    assert battles.model_a.tolist() == [0, 1, 2, 0, 1]
    assert battles.model_b.tolist() == [1, 2, 0, 2, 0]
    assert battles.outcome.tolist() == [1.0, 0.0, 0.5, 0.5, 0.5]
    assert battles.both_bad.tolist() == [False, False, False, True, True]
    assert battles.features_a is None


def test_read_battles_reads_gzipped_csv_flags_and_the_hard_rule(tmp_path):
    header = "model_a,model_b,winner,math.math,if.score," + ",".join(
        f"criteria.{c}" for c in CRITERIA
    )
    rows = [
        "p,q,model_a,1,5," + ",".join(["1"] * 7),  # 7 of 7 criteria: hard
        "p,q,model_b,0,0," + ",".join(["1"] * 6 + ["0"]),  # 6 of 7: hard
        "q,p,tie,1,3," + ",".join(["1"] * 5 + ["0"] * 2),  # 5 of 7: not hard
    ]
    battles = read_battles(write(tmp_path / "b.csv.gz", "\n".join([header, *rows]) + "\n"))
    assert "if.score" not in battles.flags  # a 0..5 score is not a category flag
    assert battles.category_mask("hard").tolist() == [True, True, False]
    assert battles.category_mask("math").tolist() == [True, False, True]
    assert len(read_battles(tmp_path / "b.csv.gz", category="hard")) == 2
    with pytest.raises(ValueError, match="unknown category 'coding'.*hard"):
        battles.category_mask("coding")


def test_read_battles_filters_on_a_category_column(tmp_path):
    path = write(
        tmp_path / "b.csv",
        ("model_a,model_b,winner,category\np,q,model_a,coding\np,q,model_b,math\nq,p,tie,coding\n"),
    )
    coding = read_battles(path, category="coding")
    assert coding.outcome.tolist() == [1.0, 0.5]
    assert coding.models == ["p", "q"]


def test_read_battles_reads_jsonl_with_nested_category_tags_and_conversations(tmp_path):
    def record(winner, answer_a, answer_b, math):
        return json.dumps(
            {
                "model_a": "p",
                "model_b": "q",
                "winner": winner,
                "category_tag": {"math_v0.1": {"math": math}},
                "conversation_a": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": answer_a},
                ],
                "conversation_b": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": answer_b},
                ],
            }
        )

    text = (
        "\n".join(
            [
                record("model_a", "# Plan\n- one\n- two\n**done**", "short", True),
                "",
                record("model_b", "plain", "also plain", False),
            ]
        )
        + "\n"
    )
    battles = read_battles(write(tmp_path / "b.jsonl.gz", text))
    assert battles.flags["math.math"].tolist() == [True, False]
    assert battles.feature_names == ("length_tokens", "headers", "list_items", "bold")
    assert battles.features_a[0, 1:].tolist() == [1.0, 2.0, 1.0]
    assert battles.features_b[0, 1:].tolist() == [0.0, 0.0, 0.0]
    assert battles.features_a[0, 0] > battles.features_b[0, 0]


def test_read_battles_prefers_fastchat_conv_metadata_for_style(tmp_path):
    meta = {
        "sum_assistant_a_tokens": 120,
        "sum_assistant_b_tokens": 40,
        "header_count_a": {"h1": 1, "h2": 2},
        "header_count_b": {"h1": 0},
        "list_count_a": {"ordered": 3, "unordered": 1},
        "list_count_b": {"ordered": 0},
        "bold_count_a": {"**": 2, "__": 0},
        "bold_count_b": {"**": 1},
    }
    records = [{"model_a": "p", "model_b": "q", "winner": "tie", "conv_metadata": meta}]
    battles = read_battles(write(tmp_path / "b.json", json.dumps(records)))
    assert battles.features_a.tolist() == [[120.0, 3.0, 4.0, 2.0]]
    assert battles.features_b.tolist() == [[40.0, 0.0, 0.0, 1.0]]


def test_read_battles_refuses_an_unknown_winner_naming_the_line(tmp_path):
    path = write(tmp_path / "b.csv", "model_a,model_b,winner\np,q,model_a\np,q,draw\n")
    with pytest.raises(ValueError, match=r"line 3: winner 'draw' is not model_a"):
        read_battles(path)


def test_read_battles_refuses_a_file_without_the_required_columns(tmp_path):
    path = write(tmp_path / "b.csv", "model_a,model_b,result\np,q,model_a\n")
    with pytest.raises(ValueError, match="line 1: missing column.*winner"):
        read_battles(path)


def test_read_battles_refuses_a_row_with_the_wrong_number_of_fields(tmp_path):
    path = write(tmp_path / "b.csv", "model_a,model_b,winner\np,q,model_a\np,q\n")
    with pytest.raises(ValueError, match="line 3: expected 3 fields, got 2"):
        read_battles(path)


def test_read_battles_refuses_an_empty_model_name(tmp_path):
    path = write(tmp_path / "b.csv", "model_a,model_b,winner\np,q,model_a\np,q,tie\n,q,tie\n")
    with pytest.raises(ValueError, match="line 4: model_a is empty"):
        read_battles(path)


def test_read_battles_refuses_a_category_flag_that_is_not_zero_or_one(tmp_path):
    path = write(tmp_path / "b.csv", "model_a,model_b,winner,math.math\np,q,tie,1\np,q,tie,maybe\n")
    with pytest.raises(ValueError, match="line 3: category flag math.math='maybe'"):
        read_battles(path)


def test_read_battles_counts_lines_of_multi_line_fields_in_messages(tmp_path):
    text = 'model_a,model_b,winner,note\np,q,model_a,"two\nlines"\np,q,nobody,x\n'
    with pytest.raises(ValueError, match="line 4: winner 'nobody'"):
        read_battles(write(tmp_path / "b.csv", text))


def test_read_battles_refuses_invalid_json_naming_the_line(tmp_path):
    good = json.dumps({"model_a": "p", "model_b": "q", "winner": "tie"})
    path = write(tmp_path / "b.jsonl", f"{good}\n{good}\n{{not json\n")
    with pytest.raises(ValueError, match="line 3: the record is not valid JSON"):
        read_battles(path)


def test_read_battles_refuses_a_missing_model_in_jsonl_naming_the_line(tmp_path):
    rows = [{"model_a": "p", "model_b": "q", "winner": "tie"}, {"model_a": "p", "winner": "tie"}]
    path = write(tmp_path / "b.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match="line 2: model_b is empty or missing"):
        read_battles(path)


def test_read_battles_reads_the_shared_arena_votes():
    if not VOTES_CSV.exists():
        pytest.skip("shared arena votes are not present")
    battles = read_battles(VOTES_CSV)
    assert len(battles) == 135_634 and len(battles.models) == 53
    assert int(battles.category_mask("hard").sum()) == 50_884
    shares = [np.mean(battles.outcome == v) for v in (1.0, 0.0)]
    assert shares == pytest.approx([0.3580, 0.3671], abs=5e-4)
    assert np.mean(battles.both_bad) == pytest.approx(0.1162, abs=5e-4)
