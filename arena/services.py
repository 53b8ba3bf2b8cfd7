"""Writes of the arena: the model registry and generation requests."""

from __future__ import annotations

import logging
import time
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError

from arena import backends
from arena.backends import GenerationError, GenerationOutput, GenerationSettings
from arena.models import Backend, Contestant, Generation
from core.jobs import (
    job_cancel_queued,
    job_claim,
    job_enqueue,
    job_fail,
    job_finish,
    job_heartbeat,
)

logger = logging.getLogger(__name__)

# One per process: a worker keeps its loaded models between tasks.
_local_models = backends.LocalModelCache(
    settings.GENERATION_MODEL_CACHE_SIZE,
    load=partial(backends.LocalModel, batch_size=settings.GENERATION_BATCH_SIZE),
)


def contestant_create(**fields) -> Contestant:
    """Create a contestant after full validation (backend fields, ranges, unique name)."""
    contestant = Contestant(**fields)
    contestant.full_clean()
    contestant.save()
    return contestant


def contestant_update(*, contestant: Contestant, **fields) -> Contestant:
    """Change `fields` of `contestant` after the same full validation as at creation."""
    for name, value in fields.items():
        setattr(contestant, name, value)
    contestant.full_clean()
    contestant.save()
    return contestant


class ContestantInUse(Exception):
    """A contestant with history (battles, generations, runs) cannot be deleted."""


def contestant_delete(*, contestant: Contestant) -> None:
    """Delete a contestant that nothing refers to yet (a mistaken registration).

    Raises ContestantInUse, naming what refers to it, when it has history: battles, votes and
    runs keep their meaning only with their models, so such a contestant is deactivated instead.
    """
    try:
        with transaction.atomic():
            contestant.delete()
    except (ProtectedError, RestrictedError) as exc:
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        raise ContestantInUse(
            f"{contestant.name} has history ({', '.join(kinds)}) and cannot be deleted; "
            "deactivate it instead (PATCH is_active=false)."
        ) from None


def contestant_model_path(contestant: Contestant) -> str:
    """The local folder holding a local contestant's weights (converting SmolLM2 on first use)."""
    if contestant.backend == Backend.SMOLLM2:
        return str(backends.smollm2_folder(settings.MODEL_CACHE_DIR))
    if contestant.backend == Backend.LOCAL:
        return contestant.model_path
    raise GenerationError(f"{contestant.name} is served by an endpoint, not from local weights.")


def contestant_generate(
    *,
    contestant: Contestant,
    messages: list[dict],
    overrides: dict | None = None,
    on_text=None,
) -> GenerationOutput:
    """Run one generation right here, in this process (a worker: web processes queue a
    `Generation` instead). `on_text(text_so_far)` receives the partial answer of a local model.
    Raises GenerationError on failure."""
    values = contestant.generation_settings() | {
        k: v for k, v in (overrides or {}).items() if v is not None
    }
    gen_settings = GenerationSettings.from_dict(values)
    if contestant.backend == Backend.OPENAI:
        return backends.openai_chat(
            base_url=contestant.endpoint_url,
            model=contestant.endpoint_model,
            messages=messages,
            settings=gen_settings,
            api_key=contestant.endpoint_api_key,
            timeout_s=contestant.request_timeout_s,
            max_retries=contestant.max_retries,
        )
    model = _local_models.get(contestant_model_path(contestant))
    return model.generate(messages, gen_settings, on_text=on_text)


def generation_request(
    *,
    contestant: Contestant,
    messages: list[dict],
    user=None,
    overrides: dict | None = None,
    battle=None,
    enqueue: bool = True,
) -> Generation:
    """Store a pending generation and queue it on the `generate` queue once the row is committed
    (`enqueue=False`: the caller runs it with `generation_execute`; beat's sweep still sends
    it to a worker if nobody does). `battle`: the battle it answers for, which decides who may
    see it (arena.selectors).

    Raises ValueError when the conversation is malformed."""
    clean = backends.validate_messages(messages)
    gen_settings = contestant.generation_settings() | {
        k: v for k, v in (overrides or {}).items() if v is not None
    }
    generation = Generation.objects.create(
        contestant=contestant,
        messages=clean,
        settings=gen_settings,
        requested_by=user if user is not None and user.is_authenticated else None,
        battle=battle,
    )
    if enqueue:
        job_enqueue(job=generation)
    return generation


def generation_execute(*, generation_id: int) -> Generation | None:
    """Run a queued generation and store its answer or its error. A generation that already
    finished, or that another worker is answering right now, is left alone, so a redelivered
    task does no harm (a running one whose worker died is taken over)."""
    claimed = job_claim(model=Generation, pk=generation_id)
    generation = Generation.objects.select_related("contestant").filter(pk=generation_id).first()
    if not claimed or generation is None:
        return generation
    try:
        output = contestant_generate(
            contestant=generation.contestant,
            messages=generation.messages,
            overrides=generation.settings,
            on_text=_partial_writer(generation),
        )
    except GenerationError as exc:
        # Only admins read the reason where it is stored (it may name an endpoint or a folder);
        # voters are told that the answer failed.
        logger.warning("Generation %s failed: %s", generation_id, exc)
        job_fail(job=generation, error=str(exc))
        return generation
    except Exception as exc:  # a crash inside a model library must not leave the row running
        logger.exception("Generation %s crashed", generation_id)
        job_fail(job=generation, error=f"The model crashed: {type(exc).__name__}: {exc}")
        return generation
    job_finish(
        job=generation,
        output=output.text,
        finish_reason=output.finish_reason,
        prompt_tokens=output.prompt_tokens,
        completion_tokens=output.completion_tokens,
        logprobs=output.logprobs,
    )
    return generation


def _partial_writer(generation: Generation):
    """Store the answer so far on the row (with a heartbeat), at most every
    `GENERATION_PARTIAL_EVERY_S`, for those who stream it. Answers False, which stops the
    model, once the row is no longer running (its asker cancelled it)."""
    every = settings.GENERATION_PARTIAL_EVERY_S
    last = {"at": time.monotonic(), "text": ""}

    def write(text: str) -> bool:
        now = time.monotonic()
        if every <= 0 or now - last["at"] < every or text == last["text"]:
            return True
        last.update(at=now, text=text)
        return job_heartbeat(job=generation, output=text)

    return write


def generation_follow(*, generation: Generation, timeout_s: float):
    """Read a queued generation's row every few tenths of a second until it finishes or
    `timeout_s` passes, yielding it after each read (its `output` holds the partial answer while
    a worker writes it). The last row yielded is finished, or still active when time ran out."""
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    fields = [
        "status", "output", "error", "finish_reason", "prompt_tokens", "completion_tokens",
        "logprobs", "started_at", "finished_at",
    ]  # fmt: skip
    while True:
        generation.refresh_from_db(fields=fields)
        yield generation
        left = deadline - time.monotonic()
        if generation.is_finished or left <= 0:
            return
        time.sleep(min(pause, left))
        pause = min(pause * 2, settings.GENERATION_POLL_MAX_S)


def generation_wait(*, generation: Generation, timeout_s: float) -> Generation:
    """Wait for a queued generation (`generation_follow`); returns the row as last read."""
    for _ in generation_follow(generation=generation, timeout_s=timeout_s):
        pass  # the row is refreshed in place
    return generation


def generation_abandon(*, generation: Generation) -> bool:
    """The caller stopped waiting: a generation no worker has taken yet is cancelled (returns
    True); one being answered is left to finish (bounded by its token cap) and stays readable
    in /api/generations/."""
    return job_cancel_queued(job=generation)
