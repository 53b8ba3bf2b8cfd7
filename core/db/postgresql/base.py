"""Django's PostgreSQL backend with a health check that costs no round trip.

With `CONN_HEALTH_CHECKS`, Django checks a persistent connection before the first query of each
request by running `SELECT 1`: a round trip to the server on every request, about as costly as
a small query of its own. This backend asks the kernel first: an idle connection has nothing to
read unless the server closed it (a restart, a fail-over, `pg_terminate_backend`) or sent it a
message. Only then is Django's `SELECT 1` run, and the connection replaced if it fails; a
connection whose socket is quiet is used as it is.

A connection that dies without a word (a network partition, no FIN) passes this check, as it
would hang in `SELECT 1` too; its first query fails, the request gets 503, and Django drops the
connection at the end of that request (`close_if_unusable_or_obsolete`).
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base


def _quiet(raw) -> bool:
    """Whether the psycopg connection `raw` is open with nothing waiting to be read."""
    if raw.closed:
        return False
    try:
        poller = select.poll()
        poller.register(raw.pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and _quiet(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
