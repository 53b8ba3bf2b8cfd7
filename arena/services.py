"""Writes of the arena: the model registry and generation requests."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from arena import backends
from arena.backends import GenerationError, GenerationOutput, GenerationSettings
from arena.models import Backend, Contestant, Generation, GenerationStatus
from core.queue import enqueue_on_commit, resend

logger = logging.getLogger(__name__)

# One per process: a worker keeps its loaded models between tasks.
_local_models = backends.LocalModelCache(settings.GENERATION_MODEL_CACHE_SIZE)


def contestant_create(**fields) -> Contestant:
    """Create a contestant after full validation (backend fields, ranges, unique name)."""
    contestant = Contestant(**fields)
    contestant.full_clean()
    contestant.save()
    return contestant


def contestant_model_path(contestant: Contestant) -> str:
    """The local folder holding a local contestant's weights (converting SmolLM2 on first use)."""
    if contestant.backend == Backend.SMOLLM2:
        return str(backends.smollm2_folder(settings.MODEL_CACHE_DIR))
    if contestant.backend == Backend.LOCAL:
        return contestant.model_path
    raise GenerationError(f"{contestant.name} is served by an endpoint, not from local weights.")


def contestant_generate(
    *, contestant: Contestant, messages: list[dict], overrides: dict | None = None
) -> GenerationOutput:
    """Run one generation right here, in this process. Raises GenerationError on failure."""
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
    return model.generate(messages, gen_settings)


def generation_request(
    *, contestant: Contestant, messages: list[dict], user=None, overrides: dict | None = None
) -> Generation:
    """Store a pending generation and queue it on the `generate` queue once the row is committed.

    Raises ValueError when the conversation is malformed."""
    from arena.tasks import generation_run

    clean = backends.validate_messages(messages)
    gen_settings = contestant.generation_settings() | {
        k: v for k, v in (overrides or {}).items() if v is not None
    }
    generation = Generation.objects.create(
        contestant=contestant,
        messages=clean,
        settings=gen_settings,
        requested_by=user if user is not None and user.is_authenticated else None,
    )
    enqueue_on_commit(generation_run, generation.id)
    return generation


def generation_execute(*, generation_id: int) -> Generation | None:
    """Run a queued generation and store its answer or its error. A generation that already
    finished is left alone, so a redelivered task does no harm."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.GENERATION_STALE_AFTER_S)
    # A pending row, or a running one whose worker died (a redelivered task); never one that
    # another worker is answering right now.
    claimed = Generation.objects.filter(
        Q(status=GenerationStatus.PENDING)
        | Q(status=GenerationStatus.RUNNING, updated_at__lt=stale),
        pk=generation_id,
    ).update(status=GenerationStatus.RUNNING, started_at=now, updated_at=now)
    generation = Generation.objects.select_related("contestant").filter(pk=generation_id).first()
    if not claimed or generation is None:
        return generation
    generation.attempts += 1
    try:
        output = contestant_generate(
            contestant=generation.contestant,
            messages=generation.messages,
            overrides=generation.settings,
        )
    except GenerationError as exc:
        return _generation_finish(generation, error=str(exc))
    except Exception as exc:  # a crash inside a model library must not leave the row running
        logger.exception("Generation %s crashed", generation_id)
        return _generation_finish(
            generation, error=f"The model crashed: {type(exc).__name__}: {exc}"
        )
    return _generation_finish(generation, output=output)


def _generation_finish(
    generation: Generation, *, output: GenerationOutput | None = None, error: str = ""
) -> Generation:
    generation.finished_at = timezone.now()
    if output is not None:
        generation.status = GenerationStatus.SUCCEEDED
        generation.output = output.text
        generation.finish_reason = output.finish_reason
        generation.prompt_tokens = output.prompt_tokens
        generation.completion_tokens = output.completion_tokens
    else:
        generation.status = GenerationStatus.FAILED
        generation.error = error
    generation.save(
        update_fields=[
            "status",
            "output",
            "error",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "attempts",
            "finished_at",
            "updated_at",
        ]
    )
    return generation


def generations_reap_stale(*, older_than_s: int | None = None) -> int:
    """Fail generations whose worker died mid-task, so that nothing waits on them forever."""
    age = older_than_s if older_than_s is not None else settings.GENERATION_STALE_AFTER_S
    cutoff = timezone.now() - timedelta(seconds=age)
    return Generation.objects.stale(older_than=cutoff).update(
        status=GenerationStatus.FAILED,
        error="The worker stopped answering before the generation finished; please retry.",
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def generations_requeue(*, older_than_s: int = 60) -> int:
    """Send again the generations still pending after `older_than_s`: their first message was
    lost (a broker outage, a purged queue). Claiming is exclusive, so a duplicate is harmless."""
    from arena.tasks import generation_run

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    waiting = Generation.objects.filter(status=GenerationStatus.PENDING, updated_at__lt=cutoff)
    ids = resend(generation_run, waiting, limit=1000)
    Generation.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    return len(ids)
