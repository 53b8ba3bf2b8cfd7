"""An OpenAI-compatible chat-completions endpoint serving the local contestants.

Any client that speaks the OpenAI API (the `openai` package, LangChain, another instance of this
platform) can call `POST /v1/chat/completions` with `model` set to a contestant's name and an API
token from the platform as the bearer key.
"""

from __future__ import annotations

import time
import uuid

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from arena import backends, selectors, services
from arena.api.serializers import MessageSerializer
from arena.backends import GenerationError
from arena.models import Contestant


class ChatCompletionRequest(serializers.Serializer):
    model = serializers.CharField(max_length=100)
    messages = MessageSerializer(many=True, allow_empty=False, max_length=200)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, allow_null=True)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    max_tokens = serializers.IntegerField(
        min_value=1, max_value=8192, required=False, allow_null=True
    )
    max_completion_tokens = serializers.IntegerField(
        min_value=1, max_value=8192, required=False, allow_null=True
    )
    seed = serializers.IntegerField(required=False, allow_null=True)
    n = serializers.IntegerField(min_value=1, max_value=1, required=False, default=1)
    stream = serializers.BooleanField(required=False, default=False)

    def validate_stream(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError("Streaming is not offered; send stream=false.")
        return value


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


class _OpenAIErrorsMixin:
    """Errors in the shape OpenAI clients parse: {"error": {"message", "type", "param", "code"}}."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        detail = response.data
        param = None
        if isinstance(detail, dict) and "detail" not in detail and detail:
            param, messages = next(iter(detail.items()))
            message = f"{param}: {_first_message(messages)}"
        else:
            message = _first_message(detail)
        kind = "invalid_request_error" if response.status_code < 500 else "server_error"
        if response.status_code in (401, 403):
            kind = "authentication_error" if response.status_code == 401 else "permission_error"
        response.data = {"error": {"message": message, "type": kind, "param": param, "code": None}}
        return response


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        return _first_message(detail.get("detail", next(iter(detail.values()), "")))
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


class ChatCompletionsView(_OpenAIErrorsMixin, APIView):
    @extend_schema(request=ChatCompletionRequest, responses={200: _COMPLETION_SCHEMA})
    def post(self, request):
        data = ChatCompletionRequest(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        contestant = selectors.contestant_get_servable(name=values["model"])
        if contestant is None:
            raise exceptions.NotFound(f"The model {values['model']!r} is not served here.")
        try:
            messages = backends.validate_messages([dict(m) for m in values["messages"]])
        except ValueError as exc:
            raise exceptions.ValidationError({"messages": [str(exc)]}) from None
        overrides = {
            "temperature": values.get("temperature"),
            "top_p": values.get("top_p"),
            "max_new_tokens": values.get("max_completion_tokens") or values.get("max_tokens"),
            "seed": values.get("seed"),
        }
        try:
            output = services.contestant_generate(
                contestant=contestant, messages=messages, overrides=overrides
            )
        except GenerationError as exc:
            return Response(
                {
                    "error": {
                        "message": str(exc),
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(_completion_body(contestant, output))


def _completion_body(contestant: Contestant, output: backends.GenerationOutput) -> dict:
    prompt_tokens = output.prompt_tokens or 0
    completion_tokens = output.completion_tokens or 0
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": contestant.name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": output.text},
                "finish_reason": output.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ModelsView(_OpenAIErrorsMixin, APIView):
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
