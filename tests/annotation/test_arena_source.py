"""Annotation rankings enter the arena leaderboard as a separate, labelled source."""

import pytest

from arena import leaderboards
from arena.models import LeaderboardSnapshot
from tests.annotation.factories import ranking_item
from tests.annotation.test_selectors import _rank

pytestmark = pytest.mark.django_db


def test_arena_board_with_annotation_rankings_is_labelled_and_kept_apart(
    client, project, make_annotator, contestants
):
    for _ in range(5):
        ranking_item(project, k=2, contestants=contestants)
    user = make_annotator()
    for _ in range(5):
        _rank(
            project,
            user,
            lambda a: list(
                a.item.completions.order_by("contestant__name").values_list("id", flat=True)
            ),
        )
    assert leaderboards.leaderboards_refresh(rounds=50) == 1  # no arena votes: only this board
    snapshot = LeaderboardSnapshot.objects.get()
    assert snapshot.include_annotation and snapshot.battles == 5
    assert [r["model"] for r in snapshot.rows] == ["alpha-model", "beta-model"]
    assert client.get("/api/leaderboard/").status_code == 404  # the arena-only board is empty
    body = client.get("/api/leaderboard/?include_annotation=1").json()
    assert body["include_annotation"] and body["rows"][0]["model"] == "alpha-model"
    page = client.get("/arena/leaderboard/?include_annotation=on").content.decode()
    assert "arena votes plus annotation rankings" in page
