"""The evaluation report of a policy run (SFT, DPO family, PPO, GRPO), written after training
succeeds: the new policy against its parent on prompts of the run's snapshot, judged by a
held-out reward model (`TrainingRun.eval_judge`), and whether that judge pays for length.

The arena rating is not stored here: it changes with every vote, so pages and the API read it
from the newest leaderboard snapshot (`selectors.run_arena`).
"""

from __future__ import annotations

import json
import logging
import random
from datetime import timedelta

from django.utils import timezone

from core.queue import enqueue_on_commit, resend
from training.models import ReportStatus, RunKind, RunStatus, TrainingRun

logger = logging.getLogger(__name__)

REPORT_PROMPTS = 32  # prompts answered by both models
REPORT_MAX_NEW_TOKENS = 256
REPORT_EXAMPLES = 5  # answer pairs shown on the run page
NO_JUDGE = (
    "No evaluation judge was chosen when this run was created, so there is no win rate "
    "against the parent and no reward/length correlation. The arena rating appears once "
    "people have voted."
)


def training_run_report_start(*, run: TrainingRun) -> None:
    """Called in the transaction that registers a policy: queue the report, or, without an
    evaluation judge, store at once a report that says so."""
    from training.tasks import training_run_report

    if run.kind == RunKind.REWARD:
        return
    if run.eval_judge_id is None:
        run.report, run.report_status = {"judge": None, "note": NO_JUDGE}, ReportStatus.READY
    else:
        run.report, run.report_status = {}, ReportStatus.PENDING
        enqueue_on_commit(training_run_report, run.pk)
    run.save(update_fields=["report", "report_status"])


def training_reports_requeue(*, pending_for_s: int = 1800) -> int:
    """Beat's sweep: send again the reports of runs that finished more than `pending_for_s`
    ago and are still pending (the message was lost, or the worker died computing it)."""
    from training.tasks import training_run_report

    cutoff = timezone.now() - timedelta(seconds=pending_for_s)
    waiting = TrainingRun.objects.filter(
        report_status=ReportStatus.PENDING, status=RunStatus.SUCCEEDED, finished_at__lt=cutoff
    )
    return len(resend(training_run_report, waiting))


def report_prompts(rows: list[dict], limit: int = REPORT_PROMPTS, seed: int = 0) -> list:
    """Distinct prompts of snapshot rows (text or messages, whichever the first row has), a
    seeded sample of at most `limit`."""
    seen: dict[str, object] = {}
    for row in rows:
        prompt = _row_prompt(row)
        if prompt:
            seen.setdefault(json.dumps(prompt, sort_keys=True), prompt)
    prompts = list(seen.values())
    if prompts:
        kind = type(prompts[0])
        prompts = [p for p in prompts if isinstance(p, kind)]  # one batch needs one shape
    random.Random(seed).shuffle(prompts)
    return prompts[:limit]


def _row_prompt(row: dict):
    if row.get("prompt"):
        return row["prompt"]
    conversation = row.get("messages") or row.get("chosen")
    if isinstance(conversation, list):
        last_user = max(
            (i for i, m in enumerate(conversation) if m.get("role") == "user"), default=None
        )
        return conversation[: last_user + 1] if last_user is not None else None
    return None


def training_run_report(*, run_id: int) -> TrainingRun | None:
    """The worker's side (gpu queue): answer the report prompts with the policy and its parent,
    score both with the evaluation judge, store the report. Failure is stored, never raised:
    the run itself succeeded."""
    run = (
        TrainingRun.objects.select_related("base_model", "result_contestant", "eval_judge")
        .filter(pk=run_id, status=RunStatus.SUCCEEDED, report_status=ReportStatus.PENDING)
        .first()
    )
    if run is None or run.result_contestant is None or run.eval_judge is None:
        return None
    try:
        report = _evaluate(run)
    except Exception as exc:  # the report must say what happened
        logger.exception("Report of run %s failed", run.pk)
        run.report = {"judge": run.eval_judge.name, "error": f"{type(exc).__name__}: {exc}"}
        run.report_status = ReportStatus.FAILED
    else:
        run.report, run.report_status = report, ReportStatus.READY
    run.save(update_fields=["report", "report_status"])
    return run


def _evaluate(run: TrainingRun) -> dict:
    from arena.services import contestant_model_path
    from training.core.common import load_causal_lm, load_tokenizer, pick_device
    from training.core.evaluation import GenerationSettings, generate, reward_length_correlation
    from training.judges import judge_load
    from training.services import snapshot_rows

    prompts = report_prompts(snapshot_rows(run.snapshot))
    if not prompts:
        raise ValueError(f"snapshot #{run.snapshot_id} has no prompts to answer")
    device = pick_device()
    policy_path = contestant_model_path(run.result_contestant)
    # Greedy answers: the comparison is about the models, not about sampling luck.
    settings = GenerationSettings(
        max_new_tokens=min(run.base_model.max_new_tokens, REPORT_MAX_NEW_TOKENS), do_sample=False
    )
    answers = {}
    for side, path in (("policy", policy_path), ("parent", contestant_model_path(run.base_model))):
        model, tokenizer = load_causal_lm(path, device=device).eval(), load_tokenizer(path)
        answers[side] = [a[0].strip() for a in generate(model, tokenizer, prompts, settings)]
        del model  # one model in memory at a time
    judge = judge_load(run.eval_judge)
    # `evaluation.win_rate` would generate the policy's answers a second time for the
    # correlation below; both read the same answers here instead.
    rewards = {
        side: judge.score([(p, _answer(p, a)) for p, a in zip(prompts, texts, strict=True)])
        for side, texts in answers.items()
    }
    policy_pairs = [(p, _answer(p, a)) for p, a in zip(prompts, answers["policy"], strict=True)]
    correlation = reward_length_correlation(judge.model, judge.tokenizer, policy_pairs)
    return {
        "judge": run.eval_judge.name,
        "prompts": len(prompts),
        "prompt_source": f"dataset snapshot #{run.snapshot_id}",
        "max_new_tokens": settings.max_new_tokens,
        **win_stats(rewards["policy"], rewards["parent"]),
        "reward_length": {k: float(v) for k, v in correlation.items()},
        "examples": [
            {
                "prompt": _prompt_text(p),
                "policy": answers["policy"][i],
                "parent": answers["parent"][i],
                "policy_reward": rewards["policy"][i],
                "parent_reward": rewards["parent"][i],
            }
            for i, p in enumerate(prompts[:REPORT_EXAMPLES])
        ],
        "computed_at": timezone.now().isoformat(),
    }


def win_stats(policy: list[float], parent: list[float]) -> dict:
    """Wins, losses and ties of the policy by reward; ties count half in the win rate."""
    wins = sum(a > b for a, b in zip(policy, parent, strict=True))
    losses = sum(a < b for a, b in zip(policy, parent, strict=True))
    n = len(policy)
    return {
        "win_rate": (wins + 0.5 * (n - wins - losses)) / n if n else None,
        "wins": wins,
        "losses": losses,
        "ties": n - wins - losses,
        "mean_reward_policy": sum(policy) / n if n else None,
        "mean_reward_parent": sum(parent) / n if n else None,
    }


def _answer(prompt, text: str):
    return [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text


def _prompt_text(prompt) -> str:
    if isinstance(prompt, list):
        users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
        return users[-1] if users else ""
    return prompt
