"""`stream: true` for `/v1/chat/completions`: server-sent events in OpenAI's chunk format.

The worker stores the answer so far on the `Generation` row every
`GENERATION_PARTIAL_EVERY_S`; the view reads the row and sends what is new. Only text that
can no longer change is sent while the answer grows: not the trailing spaces (the final answer
is trimmed), not an unfinished character, not the start of a stop string (which would be cut).
The stream ends with a chunk carrying `finish_reason`, a usage chunk when
`stream_options.include_usage` is set, and `data: [DONE]`.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import StreamingHttpResponse

from arena import selectors, services
from arena.models import Generation, GenerationStatus

logger = logging.getLogger(__name__)


def stable_prefix(partial: str, stop: list[str] | tuple[str, ...]) -> str:
    """The part of a growing answer that the finished answer will start with."""
    text = partial.lstrip().rstrip().rstrip("\ufffd").rstrip()
    for s in stop or ():
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                return stable_prefix(text[:-k], stop)
    return text


def _event(body: dict) -> bytes:
    return f"data: {json.dumps(body)}\n\n".encode()


def _chunk(generation: Generation, delta: dict, finish_reason: str | None = None) -> bytes:
    return _event(
        {
            "id": f"chatcmpl-{generation.pk}",
            "object": "chat.completion.chunk",
            "created": int(generation.created_at.timestamp()),
            "model": generation.contestant.name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
    )


def _usage(generation: Generation) -> bytes:
    prompt, completion = generation.prompt_tokens or 0, generation.completion_tokens or 0
    return _event(
        {
            "id": f"chatcmpl-{generation.pk}",
            "object": "chat.completion.chunk",
            "created": int(generation.created_at.timestamp()),
            "model": generation.contestant.name,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )


def _error(message: str, kind: str, code: str | None) -> bytes:
    return _event({"error": {"message": message, "type": kind, "param": None, "code": code}})


def _events(request, generation: Generation, include_usage: bool):
    stop = generation.settings.get("stop") or []
    sent = ""
    yield _chunk(generation, {"role": "assistant", "content": ""})
    for row in services.generation_follow(
        generation=generation, timeout_s=settings.V1_GENERATION_WAIT_S
    ):
        text = row.output if row.status == GenerationStatus.SUCCEEDED else ""
        if row.status == GenerationStatus.RUNNING:
            text = stable_prefix(row.output, stop)
        if text.startswith(sent) and len(text) > len(sent):
            yield _chunk(row, {"content": text[len(sent) :]})
            sent = text
        elif text and not text.startswith(sent):
            logger.warning("Generation %s: streamed text is not a prefix of its answer", row.pk)
    yield from _ending(request, generation, include_usage)


def _ending(request, generation: Generation, include_usage: bool):
    if generation.status == GenerationStatus.SUCCEEDED:
        yield _chunk(generation, {}, generation.finish_reason or "stop")
        if include_usage:
            yield _usage(generation)
    elif generation.is_active:
        services.generation_abandon(generation=generation)
        yield _error(f"No answer within {settings.V1_GENERATION_WAIT_S} s.", "timeout", "timeout")
    else:
        detail = generation.error if selectors.user_sees_internals(request.user) else ""
        yield _error(detail or "The model failed to answer; please retry.", "server_error", None)
    yield b"data: [DONE]\n\n"


def stream_response(request, generation: Generation, include_usage: bool):
    response = StreamingHttpResponse(
        _events(request, generation, include_usage), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
