"""The evaluation report of a policy run (SFT, DPO family, PPO, GRPO), written after training
succeeds: the new policy against its parent on the prompts of an evaluation suite
(`TrainingRun.eval_suite`) that the run did not train on (compared by prompt hash; the others
are dropped and counted), judged by a reward model (`TrainingRun.eval_judge`) whose training
prompts are disjoint from the run's (checked when the run is created; a judge whose training
data is unknown gets a warning in the report). It gives n, the win rate with its 95% interval
and whether that interval excludes 50%, the length-controlled win rate (`evaluation.metrics`),
the judge's accuracy on pairs held out of its own training, and whether the judge pays for
length.

The arena rating is not stored here: it changes with every vote, so pages and the API read it
from the newest leaderboard snapshot (`selectors.run_arena`).
"""

from __future__ import annotations

import logging
import math
import random

from django.utils import timezone

from core.jobs import (
    JobStatus,
    job_claim,
    job_enqueue,
    job_fail,
    job_finish,
    job_heartbeat_thread,
)
from training.heldout import row_prompt
from training.models import EvaluationReport, RunKind, TrainingRun

logger = logging.getLogger(__name__)

# Prompts answered by both models: a win rate on 32 prompts has a 95% interval about 35 points
# wide; on 200, about 14.
REPORT_PROMPTS = 200
REPORT_MAX_NEW_TOKENS = 256
REPORT_EXAMPLES = 5  # answer pairs shown on the run page
NO_JUDGE = (
    "No evaluation judge and suite were chosen when this run was created, so there is no win "
    "rate against the parent and no reward/length correlation. The arena rating appears once "
    "people have voted."
)


def training_run_report_start(*, run: TrainingRun) -> None:
    """Called in the transaction that registers a policy: queue the report, or, without an
    evaluation judge, store at once a report that says so."""
    if run.kind == RunKind.REWARD:
        return
    if run.eval_judge_id is None or run.eval_suite_id is None:
        EvaluationReport.objects.create(
            run=run,
            status=JobStatus.SUCCEEDED,
            finished_at=timezone.now(),
            result={"judge": None, "note": NO_JUDGE},
        )
    else:
        job_enqueue(job=EvaluationReport.objects.create(run=run))


def report_prompts(suite, run_hashes: set[str], limit: int = REPORT_PROMPTS, seed: int = 0):
    """The suite's prompts the run did not train on (by prompt hash), a seeded sample of at
    most `limit`, and how many of the suite's prompts were dropped as training prompts."""
    from training.heldout import suite_split

    kept, dropped = suite_split(suite, run_hashes)
    if len(kept) > limit:
        kept = sorted(random.Random(seed).sample(kept, limit), key=lambda p: p.index)
    return kept, dropped


_row_prompt = row_prompt  # read by evaluation.suites


def training_run_report(*, report_id: int) -> EvaluationReport | None:
    """The worker's side (gpu queue): answer the report prompts with the policy and its parent,
    score both with the evaluation judge, store the report. Failure is stored, never raised:
    the run itself succeeded. A report that is not queued (taken, done) is left alone."""
    if not job_claim(model=EvaluationReport, pk=report_id):
        return None
    job = EvaluationReport.objects.select_related(
        "run__base_model",
        "run__result_contestant",
        "run__eval_judge__run",
        "run__eval_suite",
        "run__snapshot",
    ).get(pk=report_id)
    run = job.run
    if run.result_contestant is None or run.eval_judge is None or run.eval_suite is None:
        job_fail(job=job, error="The run has no policy, evaluation judge or suite to report on.")
        return job
    try:
        with job_heartbeat_thread(job):
            report = _evaluate(run)
    except Exception as exc:  # the report must say what happened
        logger.exception("Report of run %s failed", run.pk)
        error = f"{type(exc).__name__}: {exc}"
        job_fail(job=job, error=error, result={"judge": run.eval_judge.name, "error": error})
    else:
        job_finish(job=job, result=report)
    return job


def _evaluate(run: TrainingRun) -> dict:
    from training.heldout import snapshot_prompt_hashes

    run_hashes = snapshot_prompt_hashes(run.snapshot)
    prompts, dropped = report_prompts(run.eval_suite, run_hashes)
    if not prompts:
        raise ValueError(
            f"every prompt of suite {run.eval_suite.name} is a prompt this run trained on"
        )
    messages = [p.messages for p in prompts]
    max_new_tokens = min(run.base_model.max_new_tokens, REPORT_MAX_NEW_TOKENS)
    answers, rewards, correlation = _answer_and_score(run, messages, max_new_tokens)
    return {
        "judge": run.eval_judge.name,
        **judge_facts(run, run_hashes),
        "suite": run.eval_suite.name,
        "prompt_source": f"suite {run.eval_suite.name}",
        "suite_prompts": run.eval_suite.prompts.count(),
        "prompts_dropped": dropped,
        "prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        **win_stats(rewards["policy"], rewards["parent"]),
        **win_rate_figures(rewards, answers),
        "reward_length": {k: float(v) for k, v in correlation.items()},
        "examples": [
            {
                "prompt": p.instruction,
                "policy": answers["policy"][i],
                "parent": answers["parent"][i],
                "policy_reward": rewards["policy"][i],
                "parent_reward": rewards["parent"][i],
            }
            for i, p in enumerate(prompts[:REPORT_EXAMPLES])
        ],
        "computed_at": timezone.now().isoformat(),
    }


def _answer_and_score(run: TrainingRun, prompts: list, max_new_tokens: int):
    """Greedy answers of the policy and its parent, their rewards by the evaluation judge, and
    the correlation of the policy's rewards with its answers' lengths."""
    from arena.services import contestant_model_path
    from training.core.common import load_causal_lm, load_tokenizer, pick_device
    from training.core.evaluation import GenerationSettings, generate, reward_length_correlation
    from training.judges import judge_load

    device = pick_device()
    # Greedy answers: the comparison is about the models, not about sampling luck.
    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False)
    answers = {}
    for side, contestant in (("policy", run.result_contestant), ("parent", run.base_model)):
        path = contestant_model_path(contestant)
        model, tokenizer = load_causal_lm(path, device=device).eval(), load_tokenizer(path)
        answers[side] = [a[0].strip() for a in generate(model, tokenizer, prompts, settings)]
        del model  # one model in memory at a time
    judge = judge_load(run.eval_judge)
    rewards = {
        side: judge.score([(p, _answer(p, a)) for p, a in zip(prompts, texts, strict=True)])
        for side, texts in answers.items()
    }
    policy_pairs = [(p, _answer(p, a)) for p, a in zip(prompts, answers["policy"], strict=True)]
    correlation = reward_length_correlation(judge.model, judge.tokenizer, policy_pairs)
    return answers, rewards, correlation


def judge_facts(run: TrainingRun, run_hashes: set[str]) -> dict:
    """The judge's accuracy on pairs held out of its training (with its 95% interval) and
    whether its training prompts are disjoint from the run's, with a warning when not known."""
    from training.heldout import UNKNOWN_JUDGE_DATA, judge_overlap

    judge = run.eval_judge
    overlap = judge_overlap(judge, run.snapshot, run_hashes)
    if not overlap.known:
        data, warning = "unknown", UNKNOWN_JUDGE_DATA.format(name=judge.name)
    elif overlap.shared:
        data = "overlapping"
        warning = (
            f"Judge {judge.name} was trained on {overlap.source}, which shares "
            f"{overlap.shared} prompts with this run's snapshot: its verdicts are not independent."
        )
    else:
        data, warning = "disjoint", ""
    return {
        "judge_training_data": data,
        "judge_training_source": overlap.source,
        "judge_warning": warning,
        "judge_heldout": judge.heldout_facts,
    }


def win_rate_figures(rewards: dict[str, list[float]], answers: dict[str, list[str]]) -> dict:
    """AlpacaEval's figures with the parent as the baseline and the judge's preference
    1 + sigmoid(r(policy) - r(parent)): win rate (percent) with its 95% interval and whether it
    excludes 50%, and the length-controlled win rate (difficulty fitted on these prompts)."""
    import numpy as np

    from evaluation.metrics.leaderboard import leaderboard
    from evaluation.metrics.length_controlled import Judgments
    from evaluation.metrics.winrate import win_rate_interval

    preferences = [
        1.0 + 1.0 / (1.0 + math.exp(-(a - b)))
        for a, b in zip(rewards["policy"], rewards["parent"], strict=True)
    ]
    n = len(preferences)
    interval = win_rate_interval(preferences)
    row = leaderboard(
        [
            Judgments(
                model="policy",
                instruction=np.arange(n),
                preference=np.asarray(preferences, dtype=float),
                length=np.asarray([len(a) for a in answers["policy"]], dtype=float),
                baseline_length=np.asarray([len(a) for a in answers["parent"]], dtype=float),
            )
        ],
        n_instructions=n,
    )[0]

    def number(value):
        return None if value is None or not math.isfinite(value) else float(value)

    lc, lc_se = number(row.length_controlled_winrate), number(row.lc_standard_error)
    return {
        "n": n,
        "win_rate": number(interval.win_rate),
        "standard_error": number(row.standard_error),
        "win_rate_low": number(interval.lower),
        "win_rate_high": number(interval.upper),
        "significant": interval.significant,
        "discrete_win_rate": number(row.discrete_win_rate),
        "lc_win_rate": lc,
        "lc_standard_error": lc_se,
        "lc_low": None if lc is None or lc_se is None else lc - 1.96 * lc_se,
        "lc_high": None if lc is None or lc_se is None else lc + 1.96 * lc_se,
        "identical_answers": sum(
            a == b for a, b in zip(answers["policy"], answers["parent"], strict=True)
        ),
    }


def win_stats(policy: list[float], parent: list[float]) -> dict:
    """Wins, losses and ties of the policy by reward (ties count half in `win_share`)."""
    wins = sum(a > b for a, b in zip(policy, parent, strict=True))
    losses = sum(a < b for a, b in zip(policy, parent, strict=True))
    n = len(policy)
    return {
        "win_share": (wins + 0.5 * (n - wins - losses)) / n if n else None,
        "wins": wins,
        "losses": losses,
        "ties": n - wins - losses,
        "mean_reward_policy": sum(policy) / n if n else None,
        "mean_reward_parent": sum(parent) / n if n else None,
    }


def _answer(prompt, text: str):
    return [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text
