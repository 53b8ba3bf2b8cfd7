"""The LLM judge against a fake OpenAI-compatible endpoint: weighted preferences from logprobs,
discrete ones without, the baseline's side drawn and recorded, position bias measured."""

import pytest

from arena import services as arena_services
from evaluation import services
from evaluation.judges import primary_order
from evaluation.models import Evaluation, Judgment, RunPhase
from tests.support.judge_endpoint import JudgeEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint_suite(db):
    """Contestants served by the fake endpoint too: the evaluated one answers at length, the
    baseline briefly, so the fake judge (longest answer wins) always prefers the contestant."""
    from evaluation.suites import PromptRow, suite_create

    with JudgeEndpoint(logprobs=True) as answers:

        def contestant(name, model):
            return arena_services.contestant_create(
                name=name, display_name=name, backend="openai",
                endpoint_url=answers.base_url, endpoint_model=model, max_retries=0,
            )  # fmt: skip

        suite = suite_create(
            name="endpoint",
            baseline=contestant("brief-base", "short"),
            prompts=[PromptRow(p) for p in ("one", "two", "three")],
        )
        yield suite, contestant("verbose", "long")


def _judge(endpoint):
    return arena_services.contestant_create(
        name="llm-judge",
        display_name="LLM judge",
        backend="openai",
        endpoint_url=endpoint.base_url,
        endpoint_model="judge-model",
        max_retries=0,
    )


def _evaluate(suite, contestant, endpoint, **kwargs):
    run = services.evaluation_run_create(
        suite=suite, contestants=[contestant], judge=_judge(endpoint), **kwargs
    )
    services.evaluation_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.phase == RunPhase.DONE
    return run, Evaluation.objects.get(run=run)


def test_a_judge_with_logprobs_gives_the_probability_of_its_choice(endpoint_suite):
    # The fake judge prefers the longer answer with probability 0.8 whichever side it is on.
    suite, contestant = endpoint_suite
    with JudgeEndpoint(logprobs=True) as endpoint:
        run, evaluation = _evaluate(suite, contestant, endpoint)
    judgments = list(Judgment.objects.filter(evaluation=evaluation))
    assert len(judgments) == 3 and all(j.weighted for j in judgments)
    assert [j.preference for j in judgments] == pytest.approx([1.8, 1.8, 1.8])
    assert {j.template_version for j in judgments} == {"alpaca_eval_clf_v1"}
    assert evaluation.win_rate == pytest.approx(80.0)
    assert endpoint.requests[0]["logprobs"] is True and endpoint.requests[0]["max_tokens"] == 1
    for j in judgments:  # the drawn side is the one recorded
        assert j.order == primary_order(seed=run.seed, generator="verbose", index=j.prompt.index)


def test_a_judge_without_logprobs_gives_discrete_preferences(endpoint_suite):
    suite, contestant = endpoint_suite
    with JudgeEndpoint(logprobs=False) as endpoint:
        _, evaluation = _evaluate(suite, contestant, endpoint)
    judgments = list(Judgment.objects.filter(evaluation=evaluation))
    assert [j.preference for j in judgments] == [2.0, 2.0, 2.0]
    assert not any(j.weighted for j in judgments)
    assert evaluation.win_rate == pytest.approx(100.0) and evaluation.discrete_win_rate == 100.0


def test_judging_both_orders_measures_and_cancels_position_bias(endpoint_suite):
    suite, contestant = endpoint_suite
    with JudgeEndpoint(logprobs=False, biased=True) as endpoint:
        _, evaluation = _evaluate(suite, contestant, endpoint, both_orders=True)
    judgments = Judgment.objects.filter(evaluation=evaluation)
    assert judgments.count() == 6 and judgments.filter(primary=True).count() == 3
    assert len(endpoint.requests) == 6
    assert evaluation.position_bias == pytest.approx(1.0)
    assert evaluation.win_rate == pytest.approx(50.0)  # one win, one loss per prompt


def test_a_retried_run_asks_the_judge_only_about_what_is_missing(endpoint_suite):
    suite, contestant = endpoint_suite
    with JudgeEndpoint(logprobs=True) as endpoint:
        run, evaluation = _evaluate(suite, contestant, endpoint)
        Judgment.objects.filter(evaluation=evaluation, prompt__index=0).delete()
        asked = len(endpoint.requests)
        again = services.evaluation_run_create(
            suite=suite, contestants=[contestant], judge=run.judge_contestant
        )
        services.evaluation_run_execute(run_id=again.pk)
    assert len(endpoint.requests) == asked + 1
    assert Judgment.objects.filter(evaluation=evaluation).count() == 3


def test_an_unreachable_judge_fails_the_run_with_a_reason(endpoint_suite):
    suite, contestant = endpoint_suite
    with JudgeEndpoint(logprobs=True) as endpoint:
        judge = _judge(endpoint)
    run = services.evaluation_run_create(suite=suite, contestants=[contestant], judge=judge)
    services.evaluation_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and "failed after 1 attempts" in run.error
