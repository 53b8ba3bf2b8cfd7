"""What the leaderboard shows beside the win rates: two judges' agreement, the rank correlation
with the arena, and the win-rate-vs-length scatter."""

import pytest
from django.urls import reverse

from arena import services as arena_services
from arena.models import LeaderboardSnapshot
from evaluation import selectors
from evaluation.suites import PromptRow, suite_create
from tests.evaluation.conftest import judge_by_hand

pytestmark = pytest.mark.django_db


def _contestant(name, model_path):
    return arena_services.contestant_create(
        name=name, display_name=name.title(), backend="local", model_path=model_path
    )


def test_two_judges_on_the_same_answers_report_their_agreement(suite, tiny_contestant):
    judge_by_hand(suite, tiny_contestant, [2.0, 1.0, 1.5], label="reward:a")
    judge_by_hand(suite, tiny_contestant, [2.0, 1.0, 2.0], label="reward:b")
    (found,) = selectors.judges_agreement(suite=suite)
    assert found["judges"] == ("reward:a", "reward:b")
    assert found["agreement"] == pytest.approx(2 / 3) and found["n"] == 3


def test_the_ranking_is_correlated_with_the_newest_arena_ratings(suite, tiny_contestant):
    second = _contestant("second", tiny_contestant.model_path)
    third = _contestant("third", tiny_contestant.model_path)
    for contestant, prefs in [
        (tiny_contestant, [2.0, 2.0, 1.5]),
        (second, [2.0, 1.0, 1.5]),
        (third, [1.0, 1.0, 1.5]),
    ]:
        judge_by_hand(suite, contestant, prefs, texts={0: "same", 1: "same", 2: "same"})
    rows = [
        {"model": "tiny-llama", "rating": 1100.0},
        {"model": "second", "rating": 1000.0},
        {"model": "third", "rating": 900.0},
    ]
    LeaderboardSnapshot.objects.create(rows=rows)
    board = selectors.evaluation_rows(suite=suite, judge_label="reward:hand")
    assert [e.generator for e in board] == ["tiny-llama", "second", "third"]
    found = selectors.arena_correlation(board)
    assert found == {"n": 3, "spearman": pytest.approx(1.0)}


def test_imported_models_sit_beside_ours_on_the_page(client, suite, tiny_contestant):
    from evaluation.models import Evaluation

    judge_by_hand(suite, tiny_contestant, [2.0, 1.0, 1.5])
    imported = judge_by_hand(suite, _contestant("published", tiny_contestant.model_path), [2.0] * 3)
    Evaluation.objects.filter(pk=imported.pk).update(imported=True, contestant=None)
    html = client.get(reverse("evaluation:suite", args=[suite.pk])).content.decode()
    assert "published" in html and "imported" in html and "Tiny Llama" in html
    assert html.index("published") < html.index("Tiny Llama")  # better LC first


def test_the_scatter_places_longer_answers_further_right(suite, tiny_contestant):
    short = judge_by_hand(suite, tiny_contestant, [2.0, 1.0, 1.5], texts={0: "a", 1: "b", 2: "c"})
    long = judge_by_hand(
        suite, _contestant("wordy", tiny_contestant.model_path), [2.0, 2.0, 1.5],
        texts={0: "x" * 90, 1: "y" * 90, 2: "z" * 90},
    )  # fmt: skip
    chart = selectors.scatter_chart([short, long])
    by_label = {p["label"]: p for p in chart["points"]}
    assert by_label["wordy"]["x"] > by_label["tiny-llama"]["x"]
    assert by_label["wordy"]["y"] < by_label["tiny-llama"]["y"]  # higher win rate, higher up


def test_the_suite_picker_opens_the_chosen_suite_without_script(client, suite, baseline):
    other = suite_create(name="second-suite", baseline=baseline, prompts=[PromptRow("Why?")])
    html = client.get(reverse("evaluation:leaderboard"), {"suite": other.pk}).content.decode()
    assert "Suite <strong>second-suite</strong>" in html
    assert client.get(reverse("evaluation:leaderboard"), {"suite": 999999}).status_code == 404
