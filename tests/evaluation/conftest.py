"""Suites and contestants for the evaluation tests."""

import pytest

from arena import services as arena_services
from evaluation.suites import PromptRow, suite_create

PROMPTS = ["what is the capital of france", "write a short poem about the sea", "two plus two"]


@pytest.fixture
def baseline(tiny_model_dir, db):
    return arena_services.contestant_create(
        name="tiny-base",
        display_name="Tiny Base",
        backend="local",
        model_path=str(tiny_model_dir),
        max_new_tokens=6,
    )


@pytest.fixture
def suite(baseline):
    return suite_create(name="mini", baseline=baseline, prompts=[PromptRow(p) for p in PROMPTS])


def _answer(contestant, prompt, text):
    from arena.models import Generation
    from evaluation.models import Answer

    found = Answer.objects.filter(contestant=contestant, prompt_hash=prompt.prompt_hash).first()
    if found is not None:  # a second judge judges the same answers
        return found
    generation = Generation.objects.create(
        contestant=contestant, messages=prompt.messages, output=text, status="succeeded"
    )
    return Answer.objects.create(
        contestant=contestant,
        generator=contestant.name,
        prompt_hash=prompt.prompt_hash,
        settings_hash="test",
        generation=generation,
    )


def judge_by_hand(suite, contestant, preferences, *, label="reward:hand", texts=None):
    """An evaluation of `contestant` with the given preferences per prompt, without models."""
    from evaluation.models import Evaluation, Judgment
    from evaluation.services import metrics_refresh

    evaluation = Evaluation.objects.create(
        suite=suite, contestant=contestant, generator=contestant.name, judge_label=label
    )
    for k, (prompt, pref) in enumerate(zip(suite.prompts.all(), preferences, strict=True)):
        text = (texts or {}).get(k, f"answer {k} of {contestant.name} " + "x" * k)
        Judgment.objects.create(
            evaluation=evaluation,
            prompt=prompt,
            order="baseline_first",
            model_answer=_answer(contestant, prompt, text),
            baseline_answer=_answer(suite.baseline, prompt, f"baseline answer {k}"),
            preference=pref,
        )
    metrics_refresh(suite=suite, judge_label=label)
    evaluation.refresh_from_db()
    return evaluation


@pytest.fixture
def judged(suite, tiny_contestant):
    """The suite with one contestant judged by hand: wins, a loss and a draw."""
    return judge_by_hand(suite, tiny_contestant, [2.0, 1.0, 1.5])
