"""The default cache: a table of the database, shared by every process like Redis would be.

Django's `DatabaseCache` increments a counter by reading it and then setting it, which costs a
read, a count of the whole table, another read and the write, and two processes incrementing
at once lose one increment. Counters are what this cache holds most (rate limits, login
failures, the arena's votes since the last refit), so `incr` here is a read and one
conditional write (compare and swap, tried again when another process changed the value in
between; on PostgreSQL, after many lost races, under the row's lock): atomic, and two statements
instead of five.
"""

from __future__ import annotations

import base64
import pickle
from contextlib import nullcontext

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections, models, router, transaction
from django.utils.timezone import now as tz_now

ATTEMPTS = 50


class DatabaseCache(DjangoDatabaseCache):
    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        q = connection.ops.quote_name
        table = q(self._table)
        read = f"SELECT {q('value')}, {q('expires')} FROM {table} WHERE {q('cache_key')} = %s"
        write = (
            f"UPDATE {table} SET {q('value')} = %s"
            f" WHERE {q('cache_key')} = %s AND {q('value')} = %s"
        )
        for attempt in range(ATTEMPTS + 1):
            # After many lost races, wait for the row's lock instead (PostgreSQL).
            locked = attempt == ATTEMPTS and connection.features.has_select_for_update
            with transaction.atomic(using=db) if locked else nullcontext():
                with connection.cursor() as cursor:
                    cursor.execute(read + (" FOR UPDATE" if locked else ""), [key])
                    row = cursor.fetchone()
                    if row is None or self._expired(connection, row[1]):
                        raise ValueError(f"Key '{key}' not found")
                    stored = connection.ops.process_clob(row[0])
                    value = pickle.loads(base64.b64decode(stored.encode())) + delta  # noqa: S301
                    encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol))
                    cursor.execute(write, [encoded.decode("latin1"), key, stored])
                    if cursor.rowcount == 1:
                        return value
        # SQLite, changed by others every time: this increment is dropped (a rate limit counts
        # a little low under such a crowd) rather than the request failing.
        return value

    @staticmethod
    def _expired(connection, expires) -> bool:
        expression = models.Expression(output_field=models.DateTimeField())
        converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        )
        for converter in converters:
            expires = converter(expires, expression, connection)
        return expires < tz_now()
