"""Imports of HH, TRL preference and arena files; round trips through the exports."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.dataset_imports import DatasetImportError, dataset_import
from annotation.models import Completion, Project, Prompt, Ranking, RankingOrigin
from tests.support.shared_data import HH_HARMLESS as HH_FILE

pytestmark = pytest.mark.django_db

HH = "\n\nHuman: {q}\n\nAssistant: {a}"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def hh_pair(q: str, good: str, bad: str) -> dict:
    return {"chosen": HH.format(q=q, a=good), "rejected": HH.format(q=q, a=bad)}


def test_hh_rows_become_prompts_completions_and_imported_judgments(project, tmp_path):
    path = write_jsonl(
        tmp_path / "hh.jsonl", [hh_pair("hi?", "Hello!", "Go away."), hh_pair("hi?", "Hey.", "No.")]
    )
    report = dataset_import(fmt="hh", path=path, project=project)
    assert (report.prompts, report.completions, report.rankings) == (1, 4, 2)
    ranking = Ranking.objects.filter(project=project).order_by("id").first()
    assert ranking.origin == RankingOrigin.IMPORT and ranking.annotator is None
    chosen = Completion.objects.get(pk=ranking.groups[0][0])
    assert chosen.text == "Hello!" and chosen.prompt.messages == [
        {"role": "user", "content": "hi?"}
    ]


def test_a_file_with_a_bad_row_stores_nothing_and_names_the_line(project, tmp_path):
    path = write_jsonl(
        tmp_path / "hh.jsonl",
        [
            hh_pair("a", "b", "c"),
            "{not json",
            {"chosen": HH.format(q="x", a="y")},
            hh_pair("d", "e", "f"),
        ],
    )
    with pytest.raises(DatasetImportError) as caught:
        dataset_import(fmt="hh", path=path, project=project)
    assert [line for line, _ in caught.value.problems] == [2, 3]
    assert "line 3: missing column rejected" in str(caught.value)
    assert not Prompt.objects.filter(project=project).exists()
    assert not Ranking.objects.exists()


def test_skip_bad_stores_the_good_rows_and_lists_the_bad(project, tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl", [hh_pair("a", "b", "c"), "[1, 2]"])
    report = dataset_import(fmt="hh", path=path, project=project, skip_bad=True)
    assert report.rankings == 1 and report.skipped == [(2, "not a JSON object")]


def test_trl_preference_files_in_both_styles_and_parquet(project, tmp_path):
    rows = [
        {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
        {
            "prompt": [{"role": "user", "content": "3+3?"}],
            "chosen": [{"role": "assistant", "content": "6"}],
            "rejected": [{"role": "assistant", "content": "7"}],
        },
        {"prompt": "1+1?", "chosen": "2", "rejected": "two", "tie": True},
    ]
    report = dataset_import(
        fmt="preference", path=write_jsonl(tmp_path / "p.jsonl", rows), project=project
    )
    assert report.rankings == 3
    tie = Ranking.objects.get(prompt__messages=[{"role": "user", "content": "1+1?"}])
    assert len(tie.groups) == 1 and len(tie.groups[0]) == 2
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist(rows[:1] + [{"prompt": "", "chosen": "x", "rejected": "y"}]),
        tmp_path / "p.parquet",
    )
    with pytest.raises(DatasetImportError, match="line 2: the prompt is empty"):
        dataset_import(fmt="preference", path=tmp_path / "p.parquet", project=project)


def test_commands_import_into_a_new_project_and_export_it_back(tmp_path):
    source = write_jsonl(
        tmp_path / "hh.jsonl", [hh_pair("q1", "a1", "b1"), hh_pair("q2", "a2", "b2")]
    )
    call_command(
        "import_dataset", "--project", "HH import", "--format", "hh", "--input", str(source)
    )
    assert Project.objects.get(name="HH import").rankings.count() == 2
    out = tmp_path / "out" / "hh.jsonl"
    call_command("export_dataset", "--project", "HH import", "--format", "hh", "--output", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["chosen"], r["rejected"]) for r in exported] == [
        (HH.format(q="q1", a="a1"), HH.format(q="q1", a="b1")),
        (HH.format(q="q2", a="a2"), HH.format(q="q2", a="b2")),
    ]
    assert exported[0]["annotators"] == ["(imported)"]
    parquet = tmp_path / "out" / "prefs.parquet"
    call_command(
        "export_dataset",
        "--project",
        "HH import",
        "--format",
        "preference",
        "--pairs",
        "best-vs-rest",
        "--output",
        str(parquet),
    )
    assert parquet.stat().st_size > 0
    bad = write_jsonl(tmp_path / "bad.jsonl", ["nope"])
    with pytest.raises(CommandError, match="line 1"):
        call_command(
            "import_dataset", "--project", "Never made", "--format", "hh", "--input", str(bad)
        )
    assert not Project.objects.filter(name="Never made").exists()


@pytest.mark.skipif(not HH_FILE.exists(), reason="shared HH data is absent")
def test_real_hh_file_round_trips(tmp_path):
    with gzip.open(HH_FILE, "rt") as handle:
        originals = [json.loads(line) for line in handle]
    with pytest.raises(CommandError, match="nothing was stored"):
        call_command("import_dataset", "--project", "HH", "--format", "hh", "--input", str(HH_FILE))
    # Five HH pairs differ before the last answer (the conversations diverged earlier): they
    # cannot be one prompt with two answers, and are refused by line number.
    call_command(
        "import_dataset", "--project", "HH", "--format", "hh", "--input", str(HH_FILE), "--skip-bad"
    )
    project = Project.objects.get(name="HH")
    assert project.rankings.count() == len(originals) - 5
    out = tmp_path / "hh.jsonl"
    call_command("export_dataset", "--project", "HH", "--format", "hh", "--output", str(out))
    exported = sorted(
        (r["chosen"], r["rejected"]) for r in map(json.loads, out.read_text().splitlines())
    )
    from annotation.exports.formats import hh_split

    def splittable(row):
        try:
            hh_split(row["chosen"], row["rejected"])
        except ValueError:
            return False
        return True

    expected = sorted((r["chosen"], r["rejected"]) for r in originals if splittable(r))
    assert exported == expected


def test_arena_battles_round_trip_through_compute_leaderboard(tmp_path):
    from arena.models import Battle

    votes = [
        {"model_a": "m-one", "model_b": "m-two", "winner": w, "category": "math"}
        for w in ["model_a"] * 6 + ["model_b"] * 2 + ["tie"]
    ]
    source = write_jsonl(tmp_path / "battles.jsonl", votes)
    call_command(
        "import_dataset", "--project", "ignored", "--format", "arena", "--input", str(source)
    )
    assert Battle.objects.count() == 9
    out = tmp_path / "export.jsonl"
    call_command("export_dataset", "--format", "arena", "--output", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["winner"] for r in rows) == sorted(v["winner"] for v in votes)
    assert {"model_a", "model_b", "winner", "conversation_a", "category"} <= set(rows[0])
    board = tmp_path / "board.json"
    call_command(
        "compute_leaderboard", "--input", str(out), "--output", str(board), "--bootstrap", "0"
    )
    leaders = json.loads(board.read_text())
    assert [row["model"] for row in leaders] == ["m-one", "m-two"]
    assert sum(row["votes"] for row in leaders) == 18
