"""An OpenAI-compatible chat-completions endpoint serving the local contestants.

Any client that speaks the OpenAI API (the `openai` package, LangChain, another instance of this
platform) can call `POST /v1/chat/completions` with `model` set to a contestant's name and an API
token from the platform as the bearer key.

The answer is a `Generation` on the `generate` queue, like the arena's: this process queues it
and reads its row until a worker has answered (or streams the partial answer with
`stream: true`, `openai_stream.py`); it never loads a model. What the request may hold and the
errors' shape are in `openai_request.py`.
"""

from __future__ import annotations

import time

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from arena import backends, limits, selectors, services
from arena.api.openai_request import (
    ChatCompletionRequest,
    OpenAIError,
    OpenAIErrorsMixin,
    refuse_unsupported,
)
from arena.api.openai_stream import stream_response
from arena.api.serializers import SEED_MAX, check_max_new_tokens
from arena.models import Contestant, Generation, GenerationStatus

_COMPLETION_SCHEMA = inline_serializer(
    "ChatCompletion",
    {
        "id": serializers.CharField(),
        "object": serializers.CharField(),
        "created": serializers.IntegerField(),
        "model": serializers.CharField(),
        "choices": serializers.ListField(child=serializers.DictField()),
        "usage": serializers.DictField(),
    },
)


class ChatCompletionsView(OpenAIErrorsMixin, APIView):
    """Queues the answer as a `Generation` on the `generate` workers and waits for it: the web
    process never loads a model."""

    @extend_schema(request=ChatCompletionRequest, responses={200: _COMPLETION_SCHEMA})
    def post(self, request):
        refuse_unsupported(request.data)
        data = ChatCompletionRequest(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        contestant = selectors.contestant_get_servable(name=values["model"])
        if contestant is None:
            raise OpenAIError(
                f"The model {values['model']!r} is not served here.",
                status_code=status.HTTP_404_NOT_FOUND,
                code="model_not_found",
                param="model",
            )
        _check(request, contestant, values)
        if not limits.v1_wait_take():
            raise OpenAIError(
                "The server is busy answering other requests; please retry.",
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                kind="server_error",
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        try:
            generations = _queue(request, contestant, values)
            if values.get("stream"):
                options = values.get("stream_options") or {}
                response = stream_response(
                    request, generations[0], bool(options.get("include_usage"))
                )
                # The place is held until the stream ends (closed by the server).
                response._resource_closers.append(limits.v1_wait_release)
                return response
        except BaseException:
            limits.v1_wait_release()
            raise
        try:
            deadline = time.monotonic() + settings.V1_GENERATION_WAIT_S
            for generation in generations:  # answered side by side by the workers
                services.generation_wait(
                    generation=generation, timeout_s=max(0.0, deadline - time.monotonic())
                )
        finally:
            limits.v1_wait_release()
        return _answer(request, generations)


def _check(request, contestant: Contestant, values: dict) -> None:
    """Check the request against the contestant and the user's allowance."""
    for field in ("max_completion_tokens", "max_tokens"):
        try:
            check_max_new_tokens(contestant, values.get(field))
        except serializers.ValidationError as exc:
            raise exceptions.ValidationError({field: exc.detail}) from None
    try:
        backends.validate_messages([dict(m) for m in values["messages"]])
    except ValueError as exc:
        raise exceptions.ValidationError({"messages": [str(exc)]}) from None
    if values.get("logprobs") and not contestant.is_local:
        raise OpenAIError(
            "logprobs: only the models this server runs itself give them.", param="logprobs"
        )
    # Each of the n choices is a generation, and counts as one.
    waits = [limits.generation_rate_wait(request.user) for _ in range(values.get("n") or 1)]
    wait = max(waits)
    if wait:
        raise OpenAIError(
            limits.rate_message(wait),
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            kind="rate_limit_exceeded",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(wait)},
        )


def _queue(request, contestant: Contestant, values: dict) -> list[Generation]:
    """One generation per choice asked (`n`); with a seed, choice i samples with seed + i."""
    messages = [dict(m) for m in values["messages"]]
    seed = values.get("seed")
    overrides = {
        "temperature": values.get("temperature"),
        "top_p": values.get("top_p"),
        "max_new_tokens": values.get("max_completion_tokens") or values.get("max_tokens"),
        "stop": values.get("stop") or None,
        "top_logprobs": (values.get("top_logprobs") or 0) if values.get("logprobs") else None,
    }
    return [
        services.generation_request(
            contestant=contestant,
            messages=messages,
            user=request.user,
            overrides={**overrides, "seed": None if seed is None else (seed + i) % (SEED_MAX + 1)},
        )
        for i in range(values.get("n") or 1)
    ]


def _answer(request, generations: list[Generation]) -> Response:
    if all(g.status == GenerationStatus.SUCCEEDED for g in generations):
        return Response(_completion_body(generations))
    if any(g.is_active for g in generations):
        states = []
        for generation in generations:
            if generation.is_active:
                cancelled = services.generation_abandon(generation=generation)
                states.append("no worker took it" if cancelled else f"#{generation.pk} runs")
        raise OpenAIError(
            f"No answer within {settings.V1_GENERATION_WAIT_S} s: {', '.join(states)}.",
            status_code=status.HTTP_504_GATEWAY_TIMEOUT,
            kind="timeout",
            code="timeout",
        )
    # The reason may name a folder on the server: logged by the worker, shown to admins only.
    failed = next(g for g in generations if g.status != GenerationStatus.SUCCEEDED)
    detail = failed.error if selectors.user_sees_internals(request.user) else ""
    raise OpenAIError(
        detail or "The model failed to answer; please retry.",
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        kind="server_error",
        code=None,
    )


def _completion_body(generations: list[Generation]) -> dict:
    first = generations[0]
    prompt_tokens = first.prompt_tokens or 0  # the same prompt for every choice, counted once
    completion_tokens = sum(g.completion_tokens or 0 for g in generations)
    return {
        "id": completion_id(first),
        "object": "chat.completion",
        "created": int(first.created_at.timestamp()),
        "model": first.contestant.name,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": g.output},
                "logprobs": None if g.logprobs is None else {"content": g.logprobs},
                "finish_reason": g.finish_reason or "stop",
            }
            for i, g in enumerate(generations)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def completion_id(generation: Generation) -> str:
    """The completion's id names its generation (readable in /api/generations/ by its owner)."""
    return f"chatcmpl-{generation.pk}"


class ModelsView(OpenAIErrorsMixin, APIView):
    @extend_schema(
        responses={
            200: inline_serializer(
                "ModelList",
                {
                    "object": serializers.CharField(),
                    "data": serializers.ListField(child=serializers.DictField()),
                },
            )
        }
    )
    def get(self, request):
        models = Contestant.objects.active().local().order_by("name")
        return Response(
            {
                "object": "list",
                "data": [
                    {
                        "id": c.name,
                        "object": "model",
                        "created": int(c.created_at.timestamp()),
                        "owned_by": c.organization or "local",
                    }
                    for c in models
                ],
            }
        )
