"""A suite evaluation end to end on a real Celery worker: a tiny local contestant and baseline
answer through the generate queue, a tiny reward model judges on the gpu queue."""

import pytest

from evaluation import services
from evaluation.models import Evaluation, EvaluationJudging, Judgment, RunPhase
from tests.support.worker import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_suite_is_evaluated_by_a_reward_model_on_real_workers(
    celery_worker, suite, tiny_contestant, judge
):
    run = services.evaluation_run_create(suite=suite, contestants=[tiny_contestant], judge=judge)

    def finished():
        run.refresh_from_db()
        judging = EvaluationJudging.objects.filter(run=run).first()
        return run.status == "failed" or (judging is not None and judging.is_finished)

    wait_for(finished, timeout=240)
    judging = EvaluationJudging.objects.get(run=run)
    assert judging.status == "succeeded", judging.error + "\n" + celery_worker.log()
    run.refresh_from_db()
    assert run.phase == RunPhase.DONE and run.attempts == 1 and judging.attempts == 1
    evaluation = Evaluation.objects.get(run=run)
    assert Judgment.objects.filter(evaluation=evaluation).count() == 3
    assert evaluation.n_total == 3 and 0.0 <= evaluation.win_rate <= 100.0
