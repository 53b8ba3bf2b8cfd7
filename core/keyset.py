"""Read a large queryset in chunks without keeping a cursor open between them.

Django's `.iterator()` keeps one SELECT open until the last row. On SQLite that statement holds
a read transaction for the whole export: a write on the same connection (a build's heartbeat)
cannot upgrade it once another connection has written meanwhile ("database is locked", at
once, whatever the busy timeout), and in rollback-journal mode it keeps every writer waiting.
So on SQLite each chunk is its own short query, resuming after the last row's key (keyset
pagination). PostgreSQL reads through a server-side cursor that blocks nobody, so there the
usual iterator stays.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connections
from django.db.models import Q


def _after(keys: Sequence[str], values: tuple) -> Q:
    """Rows whose key tuple sorts after `values` (ascending on every key)."""
    condition = Q()
    for i, name in enumerate(keys):
        step = Q(**{f"{name}__gt": values[i]})
        for earlier, value in zip(keys[:i], values[:i], strict=True):
            step &= Q(**{earlier: value})
        condition |= step
    return condition


def keyset_chunks(
    queryset, *, keys: Sequence[str], key_of: Callable[[Any], tuple], size: int
) -> Iterator[list]:
    """The rows of `queryset` ordered by `keys`, `size` at a time. `keys` name non-null
    fields (or annotations) that are unique together, the last usually the primary key;
    `key_of(row)` returns a row's values of them."""
    ordered = queryset.order_by(*keys)
    if connections[queryset.db].vendor != "sqlite":
        rows = ordered.iterator(chunk_size=size)
        while chunk := list(itertools.islice(rows, size)):
            yield chunk
        return
    last = None
    while True:
        page = ordered if last is None else ordered.filter(_after(keys, last))
        chunk = list(page[:size])
        if chunk:
            yield chunk
        if len(chunk) < size:
            return
        last = key_of(chunk[-1])
