"""Reading and writing AlpacaEval's files: model outputs, annotations and the leaderboard CSV,
with refusals that name the file and the record."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from evaluation.alpaca_formats import (
    AlpacaFormatError,
    Annotation,
    ModelOutput,
    annotations_to_judgments,
    json_paths,
    leaderboard_csv,
    read_annotation_files,
    read_annotations,
    read_leaderboard_csv,
    read_model_outputs,
    write_annotations,
    write_leaderboard_csv,
    write_model_outputs,
)
from evaluation.metrics import LeaderboardRow
from tests.support.shared_data import ALPACA_EVAL


def record(**changes):
    base = {
        "instruction": "Say hi",
        "output_1": "Hello there!",
        "generator_1": "base",
        "output_2": "Hi",
        "generator_2": "model",
        "preference": 1.25,
        "annotator": "judge",
    }
    return {**base, **changes}


def write(path: Path, data) -> Path:
    text = json.dumps(data) if not isinstance(data, str) else data
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_annotations_round_trip_with_extra_fields_and_missing_verdicts(tmp_path):
    path = write(tmp_path / "a.json.gz", [record(), record(preference=None), record(preference=0)])
    annotations = read_annotations(path)
    assert [a.preference for a in annotations][0::2] == [1.25, 0.0]
    assert math.isnan(annotations[1].preference)
    assert annotations[0].extra == {"annotator": "judge"}
    write_annotations(tmp_path / "b.json", annotations)
    again = json.loads((tmp_path / "b.json").read_text())
    assert again[1]["preference"] is None and again[0] == record()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "a.json: not valid JSON"),
        ({"a": 1}, "a.json: expected a JSON list of records, got dict"),
        ([record(), 3], r"a.json: record \[1\] is not a JSON object"),
        ([record(), {"instruction": "x"}], r"a.json: record \[1\] lacks field\(s\) output_1"),
        ([record(output_2=5)], r"record \[0\]: field\(s\) output_2 must be text"),
        ([record(preference="2")], r"record \[0\]: preference '2' is not a number"),
        ([record(), record(preference=3)], r"a.json: record \[1\]: preference 3.0 is out of range"),
        ([record(preference=0.5)], r"record \[0\]: preference 0.5 is out of range"),
        ([{k: v for k, v in record().items() if k != "preference"}], "lacks field preference"),
    ],
)
def test_read_annotations_refuses_malformed_files_naming_file_and_record(
    tmp_path, content, message
):
    path = write(tmp_path / "a.json", content)
    with pytest.raises(AlpacaFormatError, match=message):
        read_annotations(path)


def test_json_paths_expands_folders_and_refuses_missing_paths(tmp_path):
    write(tmp_path / "b.json.gz", [record()])
    write(tmp_path / "a.json", [record()])
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in json_paths([tmp_path])] == ["a.json", "b.json.gz"]
    with pytest.raises(AlpacaFormatError, match="no such file or folder"):
        json_paths([tmp_path / "missing.json"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AlpacaFormatError, match="holds no .json"):
        json_paths([tmp_path / "empty"])


def test_annotations_to_judgments_groups_by_model_and_shares_instructions():
    annotations = [
        Annotation("q1", "aaaa", "base", "bb", "m1", 2.0),
        Annotation("q2", "a", "base", "bbb", "m1", 1.0),
        Annotation("q2", "a", "base", "b", "m2", 1.5),
    ]
    judgments, baseline, instructions = annotations_to_judgments(annotations)
    assert baseline == "base" and instructions == ["q1", "q2"]
    assert [j.model for j in judgments] == ["m1", "m2"]
    assert judgments[1].instruction.tolist() == [1]
    assert judgments[0].length.tolist() == [2, 3] and judgments[0].baseline_length.tolist() == [
        4,
        1,
    ]
    with pytest.raises(AlpacaFormatError, match="one baseline"):
        annotations_to_judgments([*annotations, Annotation("q1", "a", "other", "b", "m3", 1.0)])


def test_model_outputs_round_trip(tmp_path):
    outputs = [ModelOutput("q1", "a1", "m", "helpful_base"), ModelOutput("q2", "a2", "m")]
    write_model_outputs(tmp_path / "model_outputs.json", outputs)
    assert read_model_outputs(tmp_path / "model_outputs.json") == outputs
    write(tmp_path / "bad.json", [{"instruction": "q", "output": "a"}])
    with pytest.raises(
        AlpacaFormatError, match=r"bad.json: record \[0\] lacks field\(s\) generator"
    ):
        read_model_outputs(tmp_path / "bad.json")


def test_leaderboard_csv_has_an_unnamed_model_column_and_round_trips(tmp_path):
    row = LeaderboardRow(
        "m", 15.733506736409938, 1.12, 115, 688, 2, 805, 14.4, 1096, 25.2, math.nan
    )
    text = leaderboard_csv([row])
    assert text.splitlines()[0] == (
        ",win_rate,standard_error,n_wins,n_wins_base,n_draws,n_total,discrete_win_rate,"
        "avg_length,length_controlled_winrate,lc_standard_error"
    )
    assert text.splitlines()[1] == "m,15.733506736409938,1.12,115,688,2,805,14.4,1096,25.2,"
    write_leaderboard_csv(tmp_path / "lb.csv", [row])
    (back,) = read_leaderboard_csv(tmp_path / "lb.csv")
    assert back["model"] == "m" and back["win_rate"] == 15.733506736409938
    assert back["n_wins"] == 115 and back["lc_standard_error"] is None


@pytest.mark.skipif(not ALPACA_EVAL.exists(), reason="shared AlpacaEval data absent")
def test_read_leaderboard_csv_reads_the_published_rows_with_their_extra_columns():
    rows = read_leaderboard_csv(ALPACA_EVAL / "published_leaderboard_rows.csv")
    assert [r["model"] for r in rows][0] == "claude-2.1"
    assert rows[0]["mode"] == "verified" and rows[0]["n_total"] == 805
    assert np.isclose(rows[0]["length_controlled_winrate"], 25.251943886133027)


def test_read_annotation_files_refuses_a_model_judged_twice_on_one_instruction(tmp_path):
    write(tmp_path / "a.json", [record(), record(instruction="Say bye")])
    write(tmp_path / "b.json", [record(generator_2="other")])
    assert len(read_annotation_files([tmp_path])) == 3
    with pytest.raises(AlpacaFormatError, match=r"a.json: record \[0\]: model is judged again"):
        read_annotation_files([tmp_path, tmp_path / "a.json"])
