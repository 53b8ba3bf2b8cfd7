"""Evaluation runs: answers generated once and reused, the reward-model judge, metrics stored."""

import pytest

from arena import services as arena_services
from arena.models import Generation
from evaluation import services
from evaluation.models import Answer, Evaluation, EvaluationJudging, Judgment, RunPhase
from evaluation.services import EvaluationRefused

pytestmark = pytest.mark.django_db


def _run_to_the_end(run):
    services.evaluation_run_execute(run_id=run.pk)
    judging = EvaluationJudging.objects.get(run=run)
    services.evaluation_judging_execute(judging_id=judging.pk)
    run.refresh_from_db()
    return run


def test_a_reward_model_run_answers_judges_and_stores_metrics(suite, tiny_contestant, judge):
    run = services.evaluation_run_create(suite=suite, contestants=[tiny_contestant], judge=judge)
    assert run.status == "queued" and run.judge_label == "reward:tiny-judge"
    run = _run_to_the_end(run)
    assert run.phase == RunPhase.DONE and run.status == "succeeded"
    assert run.progress == {"done": 6, "total": 6, "unit": "answers"}
    assert EvaluationJudging.objects.get(run=run).progress["done"] == 3
    evaluation = Evaluation.objects.get(run=run)
    judgments = list(Judgment.objects.filter(evaluation=evaluation))
    assert len(judgments) == 3
    assert all(1.0 < j.preference < 2.0 and j.weighted for j in judgments)
    assert {j.order for j in judgments} <= {"baseline_first", "model_first"}
    expected = sum(j.preference - 1 for j in judgments) / 3 * 100
    assert evaluation.win_rate == pytest.approx(expected)
    assert evaluation.n_total == 3 and evaluation.lc_win_rate is not None
    assert evaluation.avg_length == int(
        sum(len(j.model_answer.text) for j in judgments) / len(judgments)
    )
    # Answers recorded with the suite's deterministic settings.
    generation = judgments[0].model_answer.generation
    assert generation.settings["temperature"] == 0.0 and generation.settings["seed"] == 0


def test_answers_are_reused_by_a_second_run_and_judgments_stored_once(
    suite, tiny_contestant, judge
):
    _run_to_the_end(
        services.evaluation_run_create(suite=suite, contestants=[tiny_contestant], judge=judge)
    )
    generations = Generation.objects.count()
    assert generations == 6  # 3 prompts x (baseline + contestant)
    again = _run_to_the_end(
        services.evaluation_run_create(suite=suite, contestants=[tiny_contestant], judge=judge)
    )
    assert again.status == "succeeded"
    assert Generation.objects.count() == generations
    assert Answer.objects.count() == 6
    assert Judgment.objects.count() == 3  # once per (evaluation, prompt, order)


def test_a_redelivered_run_message_does_nothing(suite, tiny_contestant, judge):
    run = services.evaluation_run_create(suite=suite, contestants=[tiny_contestant], judge=judge)
    services.evaluation_run_execute(run_id=run.pk)
    assert services.evaluation_run_execute(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.attempts == 1 and run.phase == RunPhase.JUDGING


def test_length_controlled_metrics_are_fitted_on_every_contestant_of_the_suite(
    suite, tiny_contestant, judge
):
    other = arena_services.contestant_create(
        name="tiny-other",
        display_name="Tiny Other",
        backend="local",
        model_path=tiny_contestant.model_path,
        max_new_tokens=12,
    )
    _run_to_the_end(
        services.evaluation_run_create(
            suite=suite, contestants=[tiny_contestant, other], judge=judge
        )
    )
    rows = Evaluation.objects.filter(suite=suite)
    assert rows.count() == 2
    assert all(r.computed_at is not None and r.lc_win_rate is not None for r in rows)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contestants": []}, "at least one contestant"),
        ({"contestants": "baseline"}, "the suite's baseline"),
        ({"judge": "local-contestant"}, "OpenAI-compatible endpoint"),
    ],
)
def test_bad_runs_are_refused_before_anything_is_stored(
    suite, tiny_contestant, judge, kwargs, message
):
    args = {"suite": suite, "contestants": [tiny_contestant], "judge": judge, **kwargs}
    if args["contestants"] == "baseline":
        args["contestants"] = [suite.baseline]
    if args["judge"] == "local-contestant":
        args["judge"] = tiny_contestant
    with pytest.raises(EvaluationRefused, match=message):
        services.evaluation_run_create(**args)
    assert not Evaluation.objects.exists()


def test_a_judge_that_cannot_load_fails_the_run_with_a_reason(suite, tiny_contestant, judge):
    judge.path = "/nonexistent/judge"
    judge.save()
    run = _run_to_the_end(
        services.evaluation_run_create(suite=suite, contestants=[tiny_contestant], judge=judge)
    )
    assert run.status == "failed" and "Could not load judge" in run.error


def test_evaluation_jobs_are_registered_on_their_queues():
    from core.jobs import job_kinds

    queues = {kind.label: kind.queue for kind in job_kinds()}
    assert queues["evaluation.evaluationrun"] == "generate"
    assert queues["evaluation.evaluationjudging"] == "gpu"


def test_a_silent_run_is_reaped_by_the_shared_sweep(suite, tiny_contestant, judge):
    from datetime import timedelta

    from django.utils import timezone

    from core.jobs import jobs_sweep
    from evaluation.models import EvaluationRun

    run = services.evaluation_run_create(suite=suite, contestants=[tiny_contestant], judge=judge)
    long_ago = timezone.now() - timedelta(hours=1)
    EvaluationRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=long_ago)
    assert jobs_sweep()["evaluation.evaluationrun"]["reaped"] == 1
    run.refresh_from_db()
    assert run.status == "failed" and "no heartbeat" in run.error
