"""JSON errors for API clients, whatever layer the error comes from.

DRF answers the errors its views raise in JSON, but a 404 from the URL resolver, a body over
`DATA_UPLOAD_MAX_MEMORY_SIZE` (Django's `RequestDataTooBig`, read before or inside a view) and an
unhandled exception reach Django's own handlers, which render HTML pages. Under `/api/` a client
gets DRF's `{"detail": ...}` instead, and under `/v1/` OpenAI's
`{"error": {"message", "type", "param", "code"}}`; pages keep Django's handlers.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponseBadRequest, JsonResponse
from django.views import defaults

logger = logging.getLogger(__name__)

_API_PREFIXES = ("/api/", "/v1/")


def is_api_path(path: str) -> bool:
    return path.startswith(_API_PREFIXES)


def json_error(request, status: int, message: str, *, param: str | None = None) -> JsonResponse:
    """An error in the shape the path's clients parse."""
    if request.path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        error = {"message": message, "type": kind, "param": param, "code": None}
        return JsonResponse({"error": error}, status=status)
    return JsonResponse({"detail": message}, status=status)


def too_large(request) -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return json_error(
        request, 413, f"The request body is larger than the {limit} bytes this server accepts."
    )


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig) and is_api_path(request.path):
        return too_large(request)
    if is_api_path(request.path):
        return json_error(request, 400, "The request could not be understood.")
    return defaults.bad_request(request, exception)


def page_not_found(request, exception=None):
    if is_api_path(request.path):
        return json_error(request, 404, f"Nothing is found at {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_path(request.path):
        return json_error(request, 500, "The server failed to answer; the error is logged.")
    return defaults.server_error(request)


NUL_MESSAGE = "The address may not contain the NUL character (%00)."


class ApiErrorMiddleware:
    """A body over the size limit read inside a view is a 413 in JSON, not Django's 400 page;
    an address whose path or query holds a NUL character (which PostgreSQL cannot compare) is
    a 400 before any view runs (JSON bodies: core/parsers.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            "\x00" in request.path
            or "\x00" in request.META.get("QUERY_STRING", "")
            or any(
                "\x00" in key or any("\x00" in v for v in values)
                for key, values in request.GET.lists()
            )
        ):
            if is_api_path(request.path):
                return json_error(request, 400, NUL_MESSAGE)
            return HttpResponseBadRequest(NUL_MESSAGE)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig) and is_api_path(request.path):
            return too_large(request)
        return None
