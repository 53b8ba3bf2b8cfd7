"""Imported battle files hold model names a contestant could have and no model meeting itself;
CSV exports never hand a spreadsheet a formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from arena import battle_io
from arena.battle_files import read_battles
from arena.models import Battle, BattleMode, Contestant

pytestmark = pytest.mark.django_db


def _file(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "battles.csv"
    path.write_text("\n".join(["model_a,model_b,winner", *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name", ['"=HYPERLINK(""http://x"",""y"")"', "@SUM(1+1)", "a/b", "+1", "-x", "a b"]
)
def test_an_import_refuses_a_model_name_no_contestant_could_have(tmp_path, name):
    path = _file(tmp_path, "gpt-4.1,m2,model_a", f"m1,{name},model_b")
    with pytest.raises(ValueError, match=r"line 3: model_b .* is not a model name"):
        battle_io.battles_import(path=path)
    assert not Battle.objects.exists() and not Contestant.objects.exists()


def test_an_import_refuses_a_model_battling_itself_naming_the_line(tmp_path):
    path = _file(tmp_path, "m1,m2,model_a", "m2,m1,tie", "m1,m1,tie")
    with pytest.raises(ValueError, match=r"line 4: 'm1' cannot battle itself"):
        battle_io.battles_import(path=path)
    assert not Battle.objects.exists()


def test_a_public_release_may_leave_its_self_battles_out(tmp_path):
    path = _file(tmp_path, "m1,m2,model_a", "m1,m1,tie", "amazon.nova-pro-v1:0,m2,model_b")
    assert battle_io.battles_import(path=path, skip_self_battles=True) == 2
    assert Contestant.objects.filter(name="amazon.nova-pro-v1:0").exists()


def test_the_rating_reader_still_takes_public_files_verbatim(tmp_path):
    from arena.battle_files import STORE_CHECKS

    path = _file(tmp_path, "m1,m1,tie", "a/b,m1,model_a")
    assert len(read_battles(path)) == 2
    with pytest.raises(ValueError):
        read_battles(path, checks=STORE_CHECKS)


def test_csv_export_escapes_cells_a_spreadsheet_would_run_as_formulas(
    researcher_client, tiny_contestant
):
    other = Contestant.objects.create(name="m2", display_name="M2", backend="external")
    for category in ("=HYPERLINK(1)", "@SUM(1+1)", "+1", "-1", "\tx", "\rx", "plain"):
        Battle.objects.create(
            mode=BattleMode.ANONYMOUS,
            contestant_a=tiny_contestant,
            contestant_b=other,
            winner="tie",
            category=category,
        )
    response = researcher_client.get("/arena/battle-files/export/?format=csv")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["category"] for r in rows) == sorted(
        ["'=HYPERLINK(1)", "'@SUM(1+1)", "'+1", "'-1", "'\tx", "'\rx", "plain"]
    )
    assert {r["model_a"] for r in rows} == {"tiny-llama"}


def test_csv_cells_keep_numbers_and_lists_as_they_were():
    assert battle_io.csv_cell(-1.5) == -1.5
    assert battle_io.csv_cell(["=x"]) == '["=x"]'
