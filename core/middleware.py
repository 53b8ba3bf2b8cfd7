"""Answer 503 while the database is unreachable, instead of Django's bare 500 page.

A restart or a fail-over of PostgreSQL makes every query raise `OperationalError` (no
connection) or `InterfaceError` (a connection that the server closed). Clients are better served
by "try again shortly" than by an error page: API clients get JSON in DRF's `{"detail": ...}`
shape (OpenAI's `{"error": ...}` under `/v1/`), pages a short text, all with `Retry-After`.
Django closes the broken connection at the end of the request, and the next request opens a new
one once the server is back.

SQLite raises `OperationalError` for mistakes too ("no such table" before `migrate`, a bad
statement): only its lock, open and I/O failures are an outage; the rest stay a server error,
so that nobody is told to retry what will never work.
"""

from __future__ import annotations

import logging
import sqlite3

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

MESSAGE = "The database is unavailable right now; please try again in a few seconds."
RETRY_AFTER_S = "5"
_JSON_PREFIXES = ("/api/", "/healthz")
# sqlite3.OperationalError messages that mean the file is busy or unreachable, not a mistake.
_SQLITE_OUTAGES = ("database is locked", "database table is locked", "unable to open", "disk i/o")


def database_unavailable(exception: BaseException) -> bool:
    """Whether `exception` says the database can't be reached (or is busy) right now."""
    if isinstance(exception, InterfaceError):
        return True
    if not isinstance(exception, OperationalError):
        return False
    cause = exception.__cause__
    if isinstance(cause, sqlite3.OperationalError):
        return str(cause).lower().startswith(_SQLITE_OUTAGES)
    return True


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not database_unavailable(exception):
            return None
        logger.warning("Database unavailable during %s %s: %s", request.method, request.path,
                       exception)  # fmt: skip
        if request.path.startswith("/v1/"):
            error = {"message": MESSAGE, "type": "server_error", "param": None, "code": None}
            response = JsonResponse({"error": error}, status=503)
        elif request.path.startswith(_JSON_PREFIXES):
            response = JsonResponse({"detail": MESSAGE}, status=503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = RETRY_AFTER_S
        return response
