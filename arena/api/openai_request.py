"""What `/v1/chat/completions` accepts, and its errors in OpenAI's shape:
`{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers, status

from arena.api.serializers import MessageSerializer, seed_field

MAX_STOP = 4


class OpenAIError(exceptions.APIException):
    """An error with OpenAI's `type`, `code` and `param`."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        kind: str = "invalid_request_error",
        code: str | None = "invalid_request_error",
        param: str | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.body = {"message": message, "type": kind, "param": param, "code": code}
        self.headers = headers or {}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}, "maxItems": MAX_STOP},
        ]
    }
)
class StopField(serializers.Field):
    """`stop`: a string or a list of up to four non-empty strings; always a list inside."""

    def to_internal_value(self, data):
        values = [data] if isinstance(data, str) else data
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise serializers.ValidationError("Must be a string or a list of strings.")
        if len(values) > MAX_STOP:
            raise serializers.ValidationError(f"At most {MAX_STOP} stop strings.")
        if any(not v or len(v) > 200 for v in values):
            raise serializers.ValidationError("Each stop string holds 1 to 200 characters.")
        return values

    def to_representation(self, value):
        return value


# Choices one request may ask for (`n`): each is a generation of its own on the workers.
MAX_CHOICES = 8
MAX_TOP_LOGPROBS = 20


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
    seed = seed_field(required=False, allow_null=True)
    stop = StopField(required=False, allow_null=True)
    n = serializers.IntegerField(
        min_value=1, max_value=MAX_CHOICES, required=False, allow_null=True
    )
    logprobs = serializers.BooleanField(required=False, default=False, allow_null=True)
    top_logprobs = serializers.IntegerField(
        min_value=0, max_value=MAX_TOP_LOGPROBS, required=False, allow_null=True
    )
    stream = serializers.BooleanField(required=False, default=False, allow_null=True)
    stream_options = serializers.DictField(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=256)


# Fields of OpenAI's API that are refused rather than silently ignored: a client relying on
# them would get an answer that does not do what it asked.
_REFUSED = ("tools", "tool_choice", "functions", "function_call", "logit_bias", "audio")


def _non_zero(value) -> bool:
    return value not in (None, 0, 0.0)


def refuse_unsupported(data) -> None:
    """A 400 naming the first field this endpoint does not implement."""
    if not isinstance(data, dict):
        raise OpenAIError("The request body must be a JSON object.")
    for field in _REFUSED:
        if data.get(field) not in (None, [], {}):
            raise OpenAIError(f"{field} is not supported by this server.", param=field)
    response_format = data.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise OpenAIError(
            'response_format: only {"type": "text"} is supported.', param="response_format"
        )
    for field in ("presence_penalty", "frequency_penalty"):
        if _non_zero(data.get(field)):
            raise OpenAIError(f"{field} is not supported (send 0 or leave it out).", param=field)
    if data.get("n") not in (None, 1) and data.get("stream"):
        raise OpenAIError("n: a streamed request gives one choice (n=1).", param="n")
    if data.get("top_logprobs") is not None and data.get("logprobs") is not True:
        raise OpenAIError("top_logprobs needs logprobs: true.", param="top_logprobs")
    if data.get("logprobs") and data.get("stream"):
        raise OpenAIError(
            "logprobs: a streamed answer gives none (stream: false).", param="logprobs"
        )


class OpenAIErrorsMixin:
    """Errors in the shape OpenAI clients parse: {"error": {"message", "type", "param", "code"}}."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, OpenAIError):
            response.data = {"error": exc.body}
            for name, value in exc.headers.items():
                response[name] = value
            return response
        detail = response.data
        param = None
        if isinstance(detail, dict) and "detail" not in detail and detail:
            param, messages = next(iter(detail.items()))
            message = f"{param}: {_first_message(messages)}"
        else:
            message = _first_message(detail)
        kind, code = "invalid_request_error", "invalid_request_error"
        if response.status_code >= 500:
            kind, code = "server_error", None
        if response.status_code in (401, 403):
            kind = "authentication_error" if response.status_code == 401 else "permission_error"
            code = None
        response.data = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return response


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        return _first_message(detail.get("detail", next(iter(detail.values()), "")))
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)
