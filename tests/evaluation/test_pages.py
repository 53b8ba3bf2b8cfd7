"""The evaluation leaderboard, its drill-down, suites and starting an evaluation."""

import pytest
from django.urls import reverse

from evaluation.models import EvaluationRun, Suite

pytestmark = pytest.mark.django_db


def test_the_leaderboard_shows_raw_and_lc_win_rates_with_intervals(client, judged):
    response = client.get(reverse("evaluation:leaderboard"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Tiny Llama" in html and "LC win rate" in html
    assert f"{judged.win_rate:.1f}" in html  # 50.0
    assert "1 / 1 / 1" in html
    assert '<svg class="scatter"' in html  # the length scatter, rendered on the server


def test_the_arena_tabs_link_to_the_evaluation_leaderboard(client, judged):
    html = client.get(reverse("arena:leaderboard")).content.decode()
    assert reverse("evaluation:leaderboard") in html


def test_the_drill_down_shows_both_answers_and_the_verdict(client, judged):
    html = client.get(reverse("evaluation:evaluation", args=[judged.pk])).content.decode()
    assert "what is the capital of france" in html
    assert "answer 0 of tiny-llama" in html and "baseline answer 0" in html
    assert "Model preferred" in html and "Baseline preferred" in html and "Draw" in html


def test_the_leaderboard_exports_alpaca_evals_csv(client, judged):
    response = client.get(reverse("evaluation:export", args=[judged.suite_id]))
    lines = response.content.decode().splitlines()
    assert response["Content-Type"] == "text/csv"
    assert lines[0].startswith(",win_rate,standard_error,n_wins")
    assert lines[1].startswith("tiny-llama,50.0,")


def test_a_researcher_uploads_a_suite_and_sees_a_clear_error_for_a_bad_file(
    researcher_client, baseline
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("alpaca_eval.json", b'[{"dataset": "x"}]')
    response = researcher_client.post(
        reverse("evaluation:suites"), {"name": "bad", "baseline": "tiny-base", "file": bad}
    )
    assert response.status_code == 400
    assert "Entry 1 has no `instruction` text" in response.content.decode()
    good = SimpleUploadedFile("alpaca_eval.json", b'[{"instruction": "hi", "dataset": "x"}]')
    response = researcher_client.post(
        reverse("evaluation:suites"), {"name": "good", "baseline": "tiny-base", "file": good}
    )
    assert response.status_code == 302
    assert Suite.objects.get(name="good").prompts.count() == 1


def test_annotators_cannot_create_suites_or_start_evaluations(annotator_client, suite):
    assert annotator_client.get(reverse("evaluation:suites")).status_code == 403
    start = annotator_client.post(reverse("evaluation:start", args=[suite.pk]), {})
    assert start.status_code == 403


def test_a_researcher_starts_an_evaluation_with_a_reward_model(
    researcher_client, suite, tiny_contestant, judge
):
    response = researcher_client.post(
        reverse("evaluation:start", args=[suite.pk]),
        {
            "contestants": ["tiny-llama"],
            "reward_model": "tiny-judge",
            "template_version": "alpaca_eval_clf_v1",
        },
    )
    assert response.status_code == 302
    run = EvaluationRun.objects.get()
    assert run.reward_model == judge and list(run.contestants.all()) == [tiny_contestant]


def test_starting_without_a_judge_says_so(researcher_client, suite, tiny_contestant):
    response = researcher_client.post(
        reverse("evaluation:start", args=[suite.pk]),
        {"contestants": ["tiny-llama"], "template_version": "alpaca_eval_clf_v1"},
        follow=True,
    )
    assert "Choose one judge" in response.content.decode()
    assert not EvaluationRun.objects.exists()
