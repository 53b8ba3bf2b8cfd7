"""Idempotent create requests for the API (the `Idempotency-Key` header, as in Stripe's API).

The first request with a key runs and its response is stored in the same transaction as the rows
it created; a replay with the same key returns the stored response (header
`Idempotent-Replayed: true`) and creates nothing. A key reused for another endpoint is refused.
"""

from __future__ import annotations

from functools import wraps

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from core.models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY = 200


def idempotent(view_method):
    """Decorate a DRF view method (create, or a POST action)."""

    @wraps(view_method)
    def wrapped(self, request, *args, **kwargs):
        key = request.META.get(HEADER, "").strip()
        if not key or not request.user.is_authenticated:
            return view_method(self, request, *args, **kwargs)
        if len(key) > MAX_KEY:
            return Response(
                {"detail": f"Idempotency-Key is longer than {MAX_KEY} characters."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        with transaction.atomic():
            record, refusal = _claim(request, key)
            if refusal is not None:
                return refusal
            response = view_method(self, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                record.status_code = response.status_code
                record.body = response.data
                record.save(update_fields=["status_code", "body"])
            else:
                record.delete()  # a refused request may be corrected and sent again
        return response

    return wrapped


def _claim(request, key: str) -> tuple[IdempotencyRecord | None, Response | None]:
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                user=request.user, key=key, method=request.method, path=request.path
            )
        return record, None
    except IntegrityError:
        pass
    # Wait for a concurrent first request holding the key to finish, then read its answer.
    existing = IdempotencyRecord.objects.select_for_update().get(user=request.user, key=key)
    if (existing.method, existing.path) != (request.method, request.path):
        return None, Response(
            {"detail": "This Idempotency-Key was used for another request."},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if existing.status_code == 0:
        return None, Response(
            {"detail": "A request with this Idempotency-Key is still in progress."},
            status=status.HTTP_409_CONFLICT,
        )
    replay = Response(existing.body, status=existing.status_code)
    replay["Idempotent-Replayed"] = "true"
    return None, replay
