"""Writes of judges (registered reward models): score arena battles and annotation candidates,
pick the best of n samples, and send back to review the rankings a judge strongly disagrees with.

Scoring, flagging and best-of-n run as `JudgeJob`s on the `gpu` queue.
The numbers come from `training/core` (`reward.score`, `evaluation.best_of_n`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from annotation.models import Completion, Project, Ranking, RankingOrigin, ReviewStatus
from arena.backends import GenerationError, LocalModelCache
from arena.models import Battle, BattleSource, Contestant, GenerationStatus
from core.jobs import job_claim, job_enqueue, job_fail, job_finish, job_heartbeat_thread
from training.models import (
    JudgeFlag,
    JudgeJob,
    JudgeJobKind,
    JudgeScore,
    RewardModel,
)

logger = logging.getLogger(__name__)

# Rows read, scored and stored per transaction: bounds memory, and a job that dies part-way
# keeps what it stored (the next one scores only what is missing).
CHUNK = 256
BEST_OF_N_MAX = 16
DEFAULT_FLAG_THRESHOLD = 2.0

Prompt = str | list[dict[str, str]]


class JudgeError(Exception):
    """A judge cannot do what was asked; the message says why."""


@dataclass
class LoadedJudge:
    model: Any
    tokenizer: Any

    def score(self, pairs: list[tuple[Prompt, Any]]) -> list[float]:
        from training.core.reward import score

        return score(self.model, self.tokenizer, pairs) if pairs else []


def judge_load(judge: RewardModel, load: Callable[[str], LoadedJudge] | None = None) -> LoadedJudge:
    """The judge's reward model and tokenizer, in evaluation mode on the best device, read from
    its folder, or through `load` (a cache's `get`)."""
    try:
        return (load or _judge_from_folder)(judge.path)
    except (OSError, ValueError, GenerationError) as exc:
        raise JudgeError(f"Could not load judge {judge.name} from {judge.path}: {exc}") from exc


def _judge_from_folder(path: str) -> LoadedJudge:
    from training.core.common import load_reward_model, load_tokenizer, pick_device

    tokenizer = load_tokenizer(path)
    model = load_reward_model(path, device=pick_device(), pad_token_id=tokenizer.pad_token_id)
    model.eval().requires_grad_(False)
    return LoadedJudge(model, tokenizer)


@dataclass
class _Policy:
    model: Any
    tokenizer: Any


def _policy_from_folder(path: str) -> _Policy:
    from training.core.common import load_causal_lm, load_tokenizer, pick_device

    return _Policy(load_causal_lm(path, device=pick_device()).eval(), load_tokenizer(path))


# Best-of-n answers in the web process, where loading two models would cost seconds a request:
# the last judge and policy used stay loaded (one of each per process), and one best-of-n runs
# at a time (sampling sets the global seed and the tokenizer's padding side).
_best_of_n_judges = LocalModelCache(1, load=_judge_from_folder)
_best_of_n_policies = LocalModelCache(1, load=_policy_from_folder)
_best_of_n_lock = threading.Lock()


def _chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _store(scores: list[JudgeScore]) -> int:
    """Insert a chunk of scores in one transaction; a score already stored is kept."""
    with transaction.atomic():
        JudgeScore.objects.bulk_create(scores, ignore_conflicts=True)
    return len(scores)


# --- Battles --------------------------------------------------------------------------------
def _battle_side_pairs(battle: Battle) -> list[tuple[Prompt, str]] | None:
    """(conversation before the last answer, last answer) for sides a and b, or None when a
    side has no finished answer to judge."""
    from arena.battles import side_conversation

    turns = list(battle.turns.all())
    if not turns:
        return None
    out = []
    for side in ("a", "b"):
        last = turns[-1].generation_a if side == "a" else turns[-1].generation_b
        if last is None or last.status != GenerationStatus.SUCCEEDED:
            return None
        messages = side_conversation(turns, side)
        out.append((messages[:-1], messages[-1]["content"]))
    return out


def judge_score_battles(*, judge: RewardModel, battles=None, loaded: LoadedJudge | None = None):
    """Score both sides of every two-sided battle with finished answers (default: all battles
    this judge has not scored). Returns the number of battles scored."""
    qs = battles if battles is not None else Battle.objects.all()
    scored = JudgeScore.objects.filter(judge=judge, battle__isnull=False).values("battle_id")
    qs = (
        qs.filter(contestant_b__isnull=False)
        .exclude(source=BattleSource.IMPORT)  # imported votes carry no answers to read
        .exclude(pk__in=scored)
        .prefetch_related("turns__generation_a", "turns__generation_b")
        .order_by("pk")
    )
    loaded = loaded or judge_load(judge)
    done = 0
    for chunk in _chunks(qs.iterator(chunk_size=CHUNK)):
        sides = [(b, _battle_side_pairs(b)) for b in chunk]
        sides = [(b, pairs) for b, pairs in sides if pairs]
        rewards = loaded.score([pair for _, pairs in sides for pair in pairs])
        rows = [
            JudgeScore(judge=judge, battle=b, side=side, score=rewards[2 * i + k])
            for i, (b, _) in enumerate(sides)
            for k, side in enumerate("ab")
        ]
        _store(rows)
        done += len(sides)
    return done


# --- Annotation candidates --------------------------------------------------------------------
def judge_score_candidates(
    *, judge: RewardModel, project: Project, loaded: LoadedJudge | None = None
) -> int:
    """Score every finished candidate answer of the project's prompts that this judge has not
    scored yet. Returns the number of answers scored."""
    scored = JudgeScore.objects.filter(judge=judge, completion__isnull=False).values(
        "completion_id"
    )
    qs = (
        Completion.objects.filter(prompt__project=project, is_ready=True, failed=False)
        .exclude(text="")
        .exclude(pk__in=scored)
        .select_related("prompt")
        .order_by("pk")
    )
    loaded = loaded or judge_load(judge)
    done = 0
    for chunk in _chunks(qs.iterator(chunk_size=CHUNK)):
        rewards = loaded.score([(c.prompt.messages, c.text) for c in chunk])
        _store(
            [
                JudgeScore(judge=judge, completion=c, score=r)
                for c, r in zip(chunk, rewards, strict=True)
            ]
        )
        done += len(chunk)
    return done


# --- Flagging rankings ------------------------------------------------------------------------
def _worst_disagreement(groups: list[list[int]], scores: dict[int, float]):
    """The ranked pair (better, worse) the judge most prefers the other way round, as
    (margin, preferred, over), or None when no pair is scored."""
    from annotation.exports.pairs import strict_pairs

    worst = None
    for better, worse, _tie in strict_pairs(groups):
        if better not in scores or worse not in scores:
            continue
        margin = scores[worse] - scores[better]
        if worst is None or margin > worst[0]:
            worst = (margin, worse, better)
    return worst


def judge_flag_rankings(
    *,
    judge: RewardModel,
    project: Project,
    threshold: float = DEFAULT_FLAG_THRESHOLD,
    loaded: LoadedJudge | None = None,
) -> dict:
    """Compare the judge with every live ranking of the project's annotators; a ranking in
    which the judge prefers a lower-ranked answer by at least `threshold` (reward margin) goes
    back to the review queue (pending, with a comment saying why). Each ranking is flagged at
    most once per judge, so a reviewer's second acceptance stands."""
    if threshold <= 0:
        raise JudgeError("The threshold must be a positive reward margin.")
    scored = judge_score_candidates(judge=judge, project=project, loaded=loaded)
    rankings = Ranking.objects.filter(
        project=project,
        origin=RankingOrigin.TASK,
        review_status__in=(ReviewStatus.PENDING, ReviewStatus.ACCEPTED),
    ).exclude(judge_flags__judge=judge)
    scores = dict(
        JudgeScore.objects.filter(judge=judge, completion__prompt__project=project).values_list(
            "completion_id", "score"
        )
    )
    compared, flagged = 0, 0
    for chunk in _chunks(rankings.order_by("pk").iterator(chunk_size=CHUNK)):
        found = []
        for ranking in chunk:
            worst = _worst_disagreement(ranking.groups, scores)
            compared += worst is not None
            if worst is not None and worst[0] >= threshold:
                found.append((ranking, worst))
        flagged += _flag(judge, found)
    return {"scored": scored, "compared": compared, "flagged": flagged, "threshold": threshold}


def _flag_comment(judge: RewardModel, ranking: Ranking, margin: float, preferred, over) -> str:
    letter = {cid: chr(ord("A") + i) for i, cid in enumerate(ranking.display_order)}
    return (
        f"Flagged by judge {judge.name}: margin {margin:.2f} — it prefers answer "
        f"{letter.get(preferred, preferred)} over {letter.get(over, over)}, which the "
        "annotator ranked higher."
    )


def _flag(judge: RewardModel, found: list) -> int:
    """Send a chunk of rankings back to review and record the flags, in one transaction."""
    with transaction.atomic():
        for ranking, (margin, preferred, over) in found:
            comment = _flag_comment(judge, ranking, margin, preferred, over)
            if ranking.review_comment:
                comment = f"{comment}\n{ranking.review_comment}"
            Ranking.objects.filter(
                pk=ranking.pk, review_status__in=(ReviewStatus.PENDING, ReviewStatus.ACCEPTED)
            ).update(review_status=ReviewStatus.PENDING, review_comment=comment, reviewed_at=None)
        JudgeFlag.objects.bulk_create(
            [
                JudgeFlag(judge=judge, ranking=r, preferred_id=p, over_id=o, margin=m)
                for r, (m, p, o) in found
            ],
            ignore_conflicts=True,
        )
    return len(found)


# --- Jobs -------------------------------------------------------------------------------------
def judge_job_create(
    *,
    judge: RewardModel,
    kind: str,
    project: Project | None = None,
    threshold: float | None = None,
    user=None,
) -> JudgeJob:
    """Validate and queue scoring or flagging on the `gpu` queue."""
    if not judge.is_active:
        raise JudgeError(f"Judge {judge.name} is not active.")
    if kind not in JudgeJobKind.values:
        raise JudgeError(f"Unknown job {kind!r}; choose one of {', '.join(JudgeJobKind.values)}.")
    if kind == JudgeJobKind.SCORE_BATTLES:
        project = None
    elif project is None:
        raise JudgeError("Choose the project whose answers the judge should read.")
    if kind == JudgeJobKind.FLAG_RANKINGS:
        threshold = DEFAULT_FLAG_THRESHOLD if threshold is None else threshold
        if threshold <= 0:
            raise JudgeError("The threshold must be a positive reward margin.")
    else:
        threshold = None
    with transaction.atomic():
        job = JudgeJob.objects.create(
            judge=judge,
            kind=kind,
            project=project,
            threshold=threshold,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        job_enqueue(job=job)
    return job


def judge_job_execute(*, job_id: int) -> JudgeJob | None:
    """The worker's side. A job that is not queued (taken, finished) is left alone."""
    if not job_claim(model=JudgeJob, pk=job_id):
        return None
    job = JudgeJob.objects.select_related("judge", "project").get(pk=job_id)
    try:
        with job_heartbeat_thread(job):
            result = _job_work(job)
    except Exception as exc:  # the job must end in a state that says what happened
        logger.exception("Judge job %s failed", job.pk)
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
    else:
        job_finish(job=job, result=result)
    return job


def _job_work(job: JudgeJob) -> dict:
    if job.kind == JudgeJobKind.BEST_OF_N:
        return judge_best_of_n(judge=job.judge, contestant=job.contestant, **job.params)
    loaded = judge_load(job.judge)
    if job.kind == JudgeJobKind.SCORE_BATTLES:
        return {"battles": judge_score_battles(judge=job.judge, loaded=loaded)}
    if job.kind == JudgeJobKind.SCORE_CANDIDATES:
        return {
            "completions": judge_score_candidates(
                judge=job.judge, project=job.project, loaded=loaded
            )
        }
    return judge_flag_rankings(
        judge=job.judge, project=job.project, threshold=job.threshold, loaded=loaded
    )


# --- Best of n --------------------------------------------------------------------------------
def _best_of_n_settings(contestant, prompt, n, temperature, max_new_tokens, seed):
    """The sampling settings of a best-of-n request, or JudgeError saying what is wrong."""
    from training.core.evaluation import GenerationSettings

    if not contestant.is_local:
        raise JudgeError(f"{contestant.display_name} has no local weights to sample from.")
    if not prompt.strip():
        raise JudgeError("Write a prompt.")
    if not 1 <= n <= BEST_OF_N_MAX:
        raise JudgeError(f"n must be between 1 and {BEST_OF_N_MAX}.")
    if temperature is None:  # a greedy contestant would give n equal answers
        temperature = contestant.temperature or 0.7
    if temperature <= 0:
        raise JudgeError("Best-of-n needs sampling: the temperature must be above 0.")
    return GenerationSettings(
        max_new_tokens=max_new_tokens or contestant.max_new_tokens,
        temperature=temperature,
        top_p=contestant.top_p,
        seed=seed,
    )


def judge_best_of_n_start(
    *,
    judge: RewardModel,
    contestant: Contestant,
    prompt: str,
    n: int = 4,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    seed: int = 0,
    user=None,
) -> JudgeJob:
    """Validate a best-of-n request and queue it on the `gpu` queue, where loading two models
    and sampling cannot hold a web process; one waiting request per person at a time."""
    if not judge.is_active:
        raise JudgeError(f"Judge {judge.name} is not active.")
    _best_of_n_settings(contestant, prompt, n, temperature, max_new_tokens, seed)
    user = user if user is not None and user.is_authenticated else None
    mine = JudgeJob.objects.filter(kind=JudgeJobKind.BEST_OF_N, created_by=user).active()
    if user is not None and mine.exists():
        raise JudgeError("Your last best-of-n request is still running; wait for it first.")
    with transaction.atomic():
        job = JudgeJob.objects.create(
            judge=judge,
            kind=JudgeJobKind.BEST_OF_N,
            contestant=contestant,
            params={
                "prompt": prompt,
                "n": n,
                "temperature": temperature,
                "max_new_tokens": max_new_tokens,
                "seed": seed,
            },
            created_by=user,
        )
        job_enqueue(job=job)
    return job


def judge_best_of_n(
    *,
    judge: RewardModel,
    contestant: Contestant,
    prompt: str,
    n: int = 4,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    seed: int = 0,
) -> dict:
    """Sample `n` answers of a local contestant to `prompt` and return them scored by the judge,
    best first (`best` is the winner). Runs in this process: the gpu worker's best-of-n job,
    or a bench."""
    from arena.backends import with_system_prompt
    from arena.services import contestant_model_path
    from training.core.evaluation import best_of_n

    settings = _best_of_n_settings(contestant, prompt, n, temperature, max_new_tokens, seed)
    messages = with_system_prompt([{"role": "user", "content": prompt}], contestant.system_prompt)
    path = contestant_model_path(contestant)
    with _best_of_n_lock:
        loaded = judge_load(judge, load=_best_of_n_judges.get)
        try:
            policy = _best_of_n_policies.get(path)
        except (OSError, ValueError, GenerationError) as exc:
            raise JudgeError(f"Could not load {contestant.display_name}: {exc}") from exc
        result = best_of_n(
            policy.model,
            policy.tokenizer,
            loaded.model,
            loaded.tokenizer,
            [messages],
            n=n,
            settings=settings,
        )[0]
    ranked = sorted(
        zip(result.candidates, result.scores, strict=True), key=lambda c: c[1], reverse=True
    )
    return {
        "judge": judge.name,
        "contestant": contestant.name,
        "prompt": prompt,
        "n": n,
        "temperature": settings.temperature,
        "best": {"text": result.best.strip(), "score": result.best_score},
        "candidates": [{"text": text.strip(), "score": s} for text, s in ranked],
    }
