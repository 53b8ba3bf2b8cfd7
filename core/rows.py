"""Hand-written SQL for the few hot paths where building a query with the ORM costs more than
running it (an API token's user, the arena's vote). Every use of Django's internals
(`ModelState`, a queryset's prefetch cache) is kept in this module; Django's minor version is
pinned in requirements.txt for them.

`run(sql, params)` executes one statement. On PostgreSQL it is a prepared statement of the
connection (planned once per connection, then only bound and executed); elsewhere, or with
DATABASE_PREPARED_STATEMENTS=0 (for a pooler that cannot keep them), it goes through Django's
cursor. Either way errors are Django's (`django.db.OperationalError`...) and, with DEBUG, the
statement is logged with the ORM's queries.

A `RowReader` names a model and some of its fields; `read(values)` turns those columns of a
row into an instance, through the same converters as the ORM's own queries (JSON, UUIDs and
datetimes come back as Python objects on every database). Fields not named are deferred, as
with `.only()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.db.models import Model, signals
from django.db.models.base import ModelState


@dataclass
class Result:
    rows: list[tuple]
    rowcount: int


def run(sql: str, params: list | tuple = (), *, alias: str = "default") -> Result:
    """Execute one statement; its rows (none for a statement without RETURNING) and rowcount."""
    connection = connections[alias]
    if connection.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
            return Result(rows, cursor.rowcount)
    import psycopg

    # What Django's cursor() and execute() check first.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    started = time.monotonic()
    with connection.wrap_database_errors:
        raw = connection.connection
        if raw.prepare_threshold is None:  # Django's default: nothing is prepared by itself.
            raw.prepare_threshold = 2**31 - 1  # Still nothing, but prepare=True now works.
        with psycopg.Cursor(raw) as cursor:
            cursor.execute(sql, params, prepare=True)
            returned = cursor.pgresult.status == psycopg.pq.ExecStatus.TUPLES_OK
            result = Result(cursor.fetchall() if returned else [], cursor.rowcount)
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {list(params)!r}", "time": f"{time.monotonic() - started:.3f}"}
        )
    return result


class RowReader:
    def __init__(
        self, model, fields: list[str], *, table: str = "", alias: str = "default"
    ) -> None:
        """`table`: the name the SQL gives the model's table, when it is joined under another
        (its own name by default)."""
        connection = connections[alias]
        table = table or model._meta.db_table
        self.model = model
        self.alias = alias
        self.attnames = []
        self.columns = []  # "table"."column", to put in a SELECT
        self._converters = []  # per field: (converters, expression), as the ORM applies them
        order = {f.name: k for k, f in enumerate(model._meta.concrete_fields)}
        # Model.from_db takes values in the order of the model's fields.
        for name in sorted(fields, key=lambda n: order[model._meta.get_field(n).name]):
            field = model._meta.get_field(name)
            column = field.get_col(table)
            converters = connection.ops.get_db_converters(column) + field.get_db_converters(
                connection
            )
            self.attnames.append(field.attname)
            self.columns.append(
                f"{connection.ops.quote_name(table)}.{connection.ops.quote_name(field.column)}"
            )
            self._converters.append((tuple(converters), column))
        self._direct = (
            model.from_db.__func__ is Model.from_db.__func__
            and not signals.pre_init.has_listeners(model)
            and not signals.post_init.has_listeners(model)
        )

    def __len__(self) -> int:
        return len(self.attnames)

    def read(self, values) -> object:
        """The instance for `values`: this reader's columns, in the order of `columns`."""
        connection = connections[self.alias]
        row = []
        for value, (converters, expression) in zip(values, self._converters, strict=True):
            for convert in converters:
                value = convert(value, expression, connection)
            row.append(value)
        if not self._direct:
            return self.model.from_db(self.alias, self.attnames, row)
        instance = self.model.__new__(self.model)
        instance.__dict__.update(zip(self.attnames, row, strict=True))
        state = instance._state = ModelState()
        state.adding, state.db = False, self.alias
        return instance


def prep_save(model, values: dict, *, alias: str = "default") -> dict:
    """`values` ({field name: Python value}) as the database takes them in an UPDATE."""
    connection = connections[alias]
    return {
        name: model._meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in values.items()
    }


def set_prefetched(instance, name: str, related: list) -> None:
    """Make `related` the prefetched result of `instance`'s many-side relation `name` (as
    `prefetch_related(name)` would), so that `instance.<name>.all()` costs no query."""
    queryset = getattr(instance, name).all()
    queryset._result_cache, queryset._prefetch_done = related, True
    cache = instance.__dict__.setdefault("_prefetched_objects_cache", {})
    cache[name] = queryset
