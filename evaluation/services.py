"""Writes of evaluation runs: start a run, get every answer through the `generate` queue (reused
when the same contestant already answered the same prompt with the same settings), judge them
(`evaluation.judges`), and store each contestant's metrics.

A run is a `core.jobs` job on the `generate` queue: it requests the missing answers (so that
every generate worker helps), answers the ones still pending itself, and then either judges with
an LLM itself (HTTP calls, like an endpoint contestant's generation) or hands over to an
`EvaluationJudging` job on the `gpu` queue for a reward model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from arena.models import Backend, Contestant, Generation, GenerationStatus
from core.jobs import (
    job_claim,
    job_enqueue,
    job_fail,
    job_finish,
    job_heartbeat,
    job_heartbeat_thread,
    job_requeue,
)
from evaluation.models import (
    Answer,
    Evaluation,
    EvaluationJudging,
    EvaluationRun,
    JudgeKind,
    RunPhase,
    Suite,
)

logger = logging.getLogger(__name__)

MAX_CONTESTANTS = 20
# Finished generations; a failed or cancelled one is asked again by the next run.
GENERATION_GIVEN_UP = (GenerationStatus.FAILED, "cancelled")
GENERATION_DONE = (GenerationStatus.SUCCEEDED, *GENERATION_GIVEN_UP)
WAIT_POLL_S = 1.0  # how often a run looks at answers another worker is still generating


class EvaluationRefused(ValueError):
    """The evaluation cannot start; the message says why."""


def _judge_fields(judge, template_version: str) -> dict:
    """The run's fields naming its judge; EvaluationRefused when it cannot judge."""
    from evaluation.judges import DEFAULT_TEMPLATE_VERSION, TEMPLATES
    from training.models import RewardModel

    if isinstance(judge, RewardModel):
        if not judge.is_active:
            raise EvaluationRefused(f"Judge {judge.name} is not active.")
        return {"judge_kind": JudgeKind.REWARD_MODEL, "reward_model": judge}
    if isinstance(judge, Contestant):
        if judge.backend != Backend.OPENAI:
            raise EvaluationRefused(
                f"{judge.name} cannot judge: an LLM judge is a contestant served by an "
                "OpenAI-compatible endpoint."
            )
        version = template_version or DEFAULT_TEMPLATE_VERSION
        if version not in TEMPLATES:
            raise EvaluationRefused(f"Unknown judge template {version!r}.")
        return {"judge_kind": JudgeKind.LLM, "judge_contestant": judge, "template_version": version}
    raise EvaluationRefused("The judge must be a reward model or an LLM-judge contestant.")


def evaluation_run_create(
    *,
    suite: Suite,
    contestants: list[Contestant],
    judge,
    both_orders: bool = False,
    seed: int = 0,
    template_version: str = "",
    imported_generators: list[str] = (),
    user=None,
) -> EvaluationRun:
    """Queue an evaluation of `contestants` on `suite` by `judge` (a registered `RewardModel`,
    or a contestant served by an OpenAI-compatible endpoint as an LLM judge). Refuses bad
    combinations before anything is stored. A training run's report can call this too."""
    contestants = list(dict.fromkeys(contestants))
    imported = list(dict.fromkeys(imported_generators))
    if not contestants and not imported:
        raise EvaluationRefused("Choose at least one contestant to evaluate.")
    known = set(
        Answer.objects.filter(imported=True, generator__in=imported).values_list(
            "generator", flat=True
        )
    )
    if missing := [g for g in imported if g not in known]:
        raise EvaluationRefused(f"No imported answers of {', '.join(missing)}.")
    if len(contestants) > MAX_CONTESTANTS:
        raise EvaluationRefused(f"Evaluate at most {MAX_CONTESTANTS} contestants at once.")
    if suite.baseline in contestants:
        raise EvaluationRefused(f"{suite.baseline.name} is the suite's baseline.")
    fields = {
        "suite": suite,
        "both_orders": both_orders,
        "seed": seed,
        "imported_generators": imported,
        **_judge_fields(judge, template_version),
    }
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            **fields, created_by=user if user is not None and user.is_authenticated else None
        )
        run.contestants.set(contestants)
        for contestant in contestants:
            evaluation, _ = Evaluation.objects.get_or_create(
                suite=suite,
                judge_label=run.judge_label,
                generator=contestant.name,
                defaults={"contestant": contestant, "run": run},
            )
            if evaluation.run_id != run.pk:
                evaluation.run = run
                evaluation.save(update_fields=["run"])
        for generator in imported:
            Evaluation.objects.update_or_create(
                suite=suite,
                judge_label=run.judge_label,
                generator=generator,
                defaults={"imported": True, "run": run},
            )
        job_enqueue(job=run)
    return run


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def answer_settings(*, contestant: Contestant, suite: Suite) -> dict:
    """The settings an answer to `suite` is generated with: the contestant's, overridden by the
    suite's (greedy, seed), recorded on the generation and hashed into the answer's key."""
    return contestant.generation_settings() | {
        k: v for k, v in suite.generation_settings.items() if v is not None
    }


def answer_request(*, contestant: Contestant, suite: Suite, prompt, user=None) -> Answer:
    """The stored answer of `contestant` to `prompt` under the suite's settings, requesting a
    generation when there is none yet (or the last one failed)."""
    from arena.services import generation_request

    gen_settings = answer_settings(contestant=contestant, suite=suite)
    key = {
        "contestant": contestant,
        "prompt_hash": prompt.prompt_hash,
        "settings_hash": settings_hash(gen_settings),
        "imported": False,
    }
    answer = Answer.objects.select_related("generation").filter(**key).first()
    if answer is None:
        try:
            with transaction.atomic():
                answer = Answer.objects.create(**key, generator=contestant.name)
        except IntegrityError:  # another run asked at the same moment
            answer = Answer.objects.select_related("generation").get(**key)
    if answer.generation is None or answer.generation.status in GENERATION_GIVEN_UP:
        generation = generation_request(
            contestant=contestant, messages=prompt.messages, user=user, overrides=gen_settings
        )
        # Only the request that still sees the old generation attaches its own.
        Answer.objects.filter(pk=answer.pk, generation=answer.generation).update(
            generation=generation
        )
        answer.refresh_from_db()
    return answer


def run_answers(run: EvaluationRun, *, request: bool = True) -> dict[str, dict[int, Answer]]:
    """{generator: {prompt id: answer}} for the baseline, every evaluated contestant and every
    imported generator, requesting missing or failed answers (`request`), or only reading those
    stored (the judging job)."""
    prompts = list(run.suite.prompts.all())
    everyone = [run.suite.baseline, *run.contestants.order_by("id")]
    out: dict[str, dict[int, Answer]] = {}
    for c in everyone:
        if request:
            out[c.name] = {
                p.pk: answer_request(contestant=c, suite=run.suite, prompt=p, user=run.created_by)
                for p in prompts
            }
            continue
        key = settings_hash(answer_settings(contestant=c, suite=run.suite))
        found = Answer.objects.select_related("generation").filter(
            contestant=c, settings_hash=key, imported=False
        )
        out[c.name] = _by_prompt(prompts, found)
    for generator in run.imported_generators:
        found = Answer.objects.filter(generator=generator, imported=True)
        out[generator] = _by_prompt(prompts, found)
    return out


def _by_prompt(prompts, answers) -> dict[int, Answer]:
    stored = {a.prompt_hash: a for a in answers}
    return {p.pk: stored[p.prompt_hash] for p in prompts if p.prompt_hash in stored}


def answers_complete(answers: dict[str, dict[int, Answer]], *, job=None, lost=None) -> bool:
    """Answer every generation still pending right here (claiming is exclusive, so one that a
    generate worker took meanwhile is left to it), then wait for those running elsewhere,
    storing the job's progress as answers finish. False when the job stopped being ours."""
    from arena.services import generation_execute

    ids = [a.generation_id for per in answers.values() for a in per.values() if a.generation_id]
    unfinished = Generation.objects.filter(pk__in=ids).exclude(status__in=GENERATION_DONE)

    def report() -> None:
        if job is not None:
            done = len(ids) - unfinished.count()
            job_heartbeat(job=job, progress={"done": done, "total": len(ids), "unit": "answers"})

    pending = unfinished.exclude(status=GenerationStatus.RUNNING)
    for pk in pending.values_list("pk", flat=True):
        if lost is not None and lost.is_set():
            return False
        generation_execute(generation_id=pk)
        report()
    while unfinished.exists():
        if lost is not None and lost.wait(WAIT_POLL_S):
            return False
        time.sleep(0 if lost is not None else WAIT_POLL_S)
        report()
    report()
    return True


def evaluation_run_execute(*, run_id: int) -> EvaluationRun | None:
    """The worker's side of a run (generate queue). Idempotent: a redelivered message finds the
    run taken or finished and does nothing; a retried run reuses stored answers and judgments."""
    if not job_claim(model=EvaluationRun, pk=run_id):
        return None
    run = EvaluationRun.objects.select_related(
        "suite__baseline", "reward_model", "judge_contestant"
    ).get(pk=run_id)
    try:
        with job_heartbeat_thread(run) as lost:
            answers = run_answers(run)
            if not answers_complete(answers, job=run, lost=lost):
                return run
            answers = run_answers(run, request=False)  # with their finished generations
            if run.judge_kind == JudgeKind.REWARD_MODEL:
                judging, created = EvaluationJudging.objects.get_or_create(run=run)
                if created:
                    job_enqueue(job=judging)
                else:  # a retried run judges again what is missing
                    job_requeue(job=judging)
                job_finish(job=run, phase=RunPhase.JUDGING)
                return run
            from evaluation.judges import judge_run_with_llm

            judge_run_with_llm(run, answers, lost=lost, job=run)
            metrics_refresh(suite=run.suite, judge_label=run.judge_label)
            job_finish(job=run, phase=RunPhase.DONE)
    except Exception as exc:  # the run must say what happened
        logger.exception("Evaluation run %s failed", run_id)
        job_fail(job=run, error=f"{type(exc).__name__}: {exc}")
    return run


def evaluation_judging_execute(*, judging_id: int) -> EvaluationJudging | None:
    """The gpu worker's side: score every answer of the run with its reward model."""
    from evaluation.judges import judge_run_with_reward_model

    if not job_claim(model=EvaluationJudging, pk=judging_id):
        return None
    judging = EvaluationJudging.objects.select_related(
        "run__suite__baseline", "run__reward_model"
    ).get(pk=judging_id)
    run = judging.run
    try:
        with job_heartbeat_thread(judging):
            judge_run_with_reward_model(run, run_answers(run, request=False), job=judging)
            metrics_refresh(suite=run.suite, judge_label=run.judge_label)
        job_finish(job=judging)
        EvaluationRun.objects.filter(pk=run.pk).update(phase=RunPhase.DONE)
    except Exception as exc:
        logger.exception("Judging %s failed", judging_id)
        job_fail(job=judging, error=f"{type(exc).__name__}: {exc}")
        EvaluationRun.objects.filter(pk=run.pk).update(
            status="failed", error=f"Judging failed: {type(exc).__name__}: {exc}"
        )
    return judging


def metrics_refresh(*, suite: Suite, judge_label: str) -> list[Evaluation]:
    """Recompute the metrics of every evaluation of `suite` under `judge_label` together (the
    length-controlled fit estimates each prompt's difficulty from all of them)."""
    from evaluation.metrics_store import evaluations_metrics

    evaluations = list(
        Evaluation.objects.filter(suite=suite, judge_label=judge_label).order_by("id")
    )
    rows = evaluations_metrics(suite=suite, evaluations=evaluations)
    now = timezone.now()
    with transaction.atomic():
        for evaluation in evaluations:
            for name, value in rows.get(evaluation.pk, {}).items():
                setattr(evaluation, name, value)
            evaluation.computed_at = now
            evaluation.save()
    return evaluations
