"""Limit/offset pagination that never lets a query parameter reach the database unchecked.

DRF's own class turns `?limit=99999999999999999999` into a slice SQLite cannot bind (a 500)
and silently ignores `?limit=abc`. Here a malformed `limit` or `offset` is a 400 naming the
parameter, and a large `limit` is clamped to `MAX_PAGE_SIZE`.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_PAGE_SIZE = 500
# An offset past the last row is an empty page; past this it is a mistake, whatever the table.
MAX_OFFSET = 2**31 - 1


def _non_negative(request, name: str, *, upper: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            {name: [f"{name} must be a whole number; got {raw[:40]!r}."]}
        ) from None
    if value < 0 or (upper is not None and value > upper):
        bound = f"between 0 and {upper}" if upper is not None else "0 or more"
        raise ValidationError({name: [f"{name} must be {bound}."]})
    return value


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request):
        # Asking for "everything" gets the largest page.
        limit = _non_negative(request, self.limit_query_param)
        if limit is None:
            return self.default_limit
        if limit == 0:
            raise ValidationError({self.limit_query_param: ["limit must be at least 1."]})
        return min(limit, self.max_limit)

    def get_offset(self, request):
        return _non_negative(request, self.offset_query_param, upper=MAX_OFFSET) or 0
