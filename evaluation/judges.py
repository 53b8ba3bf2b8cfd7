"""Judges of evaluation runs: a registered reward model (preference = 1 + sigmoid(r(model) -
r(baseline))) or an LLM behind an OpenAI-compatible endpoint prompted with a versioned
AlpacaEval-style template (a probability-weighted preference when the endpoint returns
logprobs, a discrete one otherwise). Each pair shows the baseline on a side drawn per prompt,
recorded on the judgment, and optionally in both orders. A judgment is stored once per
(evaluation, prompt, order), so a retried job judges only what is missing."""

from __future__ import annotations

import math
import random

from django.db import IntegrityError, transaction

from evaluation.judge_templates import (
    DEFAULT_TEMPLATE_VERSION,
    TEMPLATES,
    llm_judge_call,
)
from evaluation.models import Answer, EvaluationRun, Judgment, Order, SuitePrompt

__all__ = ["DEFAULT_TEMPLATE_VERSION", "TEMPLATES", "judge_run_with_llm"]

CHUNK = 64


def primary_order(*, seed: int, generator: str, index: int) -> str:
    """The side of the baseline for one prompt: drawn, but the same on every retry."""
    coin = random.Random(f"{seed}:{generator}:{index}").random()
    return Order.BASELINE_FIRST if coin < 0.5 else Order.MODEL_FIRST


def _pending(run: EvaluationRun, answers, *, orders_of) -> list[tuple]:
    """(evaluation, prompt, order, primary, model answer, baseline answer) still to judge, for
    prompts where both answers succeeded."""
    prompts = list(SuitePrompt.objects.filter(suite=run.suite))
    baseline = answers[run.suite.baseline.name]
    todo = []
    for evaluation in run.evaluations.select_related("contestant"):
        done = set(evaluation.judgments.values_list("prompt_id", "order"))
        mine = answers.get(evaluation.generator, {})
        for prompt in prompts:
            model_answer, base_answer = mine.get(prompt.pk), baseline.get(prompt.pk)
            if not (_succeeded(model_answer) and _succeeded(base_answer)):
                continue
            first = primary_order(seed=run.seed, generator=evaluation.generator, index=prompt.index)
            for order in orders_of(first):
                if (prompt.pk, order) not in done:
                    todo.append(
                        (evaluation, prompt, order, order == first, model_answer, base_answer)
                    )
    return todo


def _succeeded(answer: Answer | None) -> bool:
    """Whether the answer can be judged (`answers` are read after their generations finished)."""
    if answer is not None and answer.imported:
        return True
    if answer is None or answer.generation is None:
        return False
    return answer.generation.status == "succeeded"


def _store(rows: list[Judgment]) -> int:
    stored = 0
    for row in rows:
        try:
            with transaction.atomic():
                row.save()
            stored += 1
        except IntegrityError:  # judged meanwhile by an earlier attempt
            pass
    return stored


def _progress(job, done: int, total: int) -> None:
    if job is not None:
        from core.jobs import job_heartbeat

        job_heartbeat(job=job, progress={"done": done, "total": total, "unit": "judgments"})


def judge_run_with_reward_model(run: EvaluationRun, answers, *, loaded=None, job=None) -> int:
    """Score both answers of every pending pair with the run's reward model. The score of an
    answer does not depend on what it is shown beside, so one order is judged."""
    from training.judges import judge_load

    todo = _pending(run, answers, orders_of=lambda first: [first])
    if not todo:
        return 0
    loaded = loaded or judge_load(run.reward_model)
    stored = 0
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        pairs = []
        for _, prompt, _, _, model_answer, base_answer in chunk:
            pairs += [
                (prompt.instruction, model_answer.text),
                (prompt.instruction, base_answer.text),
            ]
        scores = loaded.score(pairs)
        rows = []
        for k, (evaluation, prompt, order, primary, model_answer, base_answer) in enumerate(chunk):
            margin = scores[2 * k] - scores[2 * k + 1]
            rows.append(
                Judgment(
                    evaluation=evaluation,
                    prompt=prompt,
                    order=order,
                    primary=primary,
                    model_answer=model_answer,
                    baseline_answer=base_answer,
                    preference=1.0 + 1.0 / (1.0 + math.exp(-margin)),
                    weighted=True,
                    judge_output=f"reward {scores[2 * k]:.4f} vs baseline {scores[2 * k + 1]:.4f}",
                    template_version="reward",
                )
            )
        stored += _store(rows)
        _progress(job, start + len(chunk), len(todo))
    return stored


def judge_run_with_llm(run: EvaluationRun, answers, *, lost=None, job=None) -> int:
    """Ask the LLM judge about every pending pair, in the drawn order (and the other one too
    when the run asks for both), one HTTP call each."""
    both = lambda first: [first, *(o for o in Order.values if o != first)]  # noqa: E731
    todo = _pending(run, answers, orders_of=both if run.both_orders else lambda f: [f])
    stored = 0
    for k, (evaluation, prompt, order, primary, model_answer, base_answer) in enumerate(todo):
        if lost is not None and lost.is_set():
            break
        _progress(job, k, len(todo))
        baseline_first = order == Order.BASELINE_FIRST
        first, second = (
            (base_answer.text, model_answer.text)
            if baseline_first
            else (model_answer.text, base_answer.text)
        )
        verdict = llm_judge_call(
            judge=run.judge_contestant,
            version=run.template_version,
            instruction=prompt.instruction,
            output_1=first,
            output_2=second,
        )
        shown = verdict.preference  # 2 = the second answer shown is better
        preference = None if shown is None else (shown if baseline_first else 3.0 - shown)
        stored += _store(
            [
                Judgment(
                    evaluation=evaluation,
                    prompt=prompt,
                    order=order,
                    primary=primary,
                    model_answer=model_answer,
                    baseline_answer=base_answer,
                    preference=preference,
                    weighted=verdict.weighted,
                    judge_output=verdict.raw[:2000],
                    template_version=run.template_version,
                )
            ]
        )
    return stored
