"""PostgreSQL connections: the health check before a request's first query asks the kernel, and
runs Django's `SELECT 1` only when the server has closed the connection or written to it."""

import time

import pytest
from django.db import connection, connections

from core.db.postgresql.base import _quiet

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL backend"),
]


@pytest.fixture
def own_connection():
    """A persistent connection of its own (health checks on, as configured), so that the
    test's connection and its transaction are never touched."""
    conn = connections.create_connection("default")
    conn.ensure_connection()
    assert conn.health_check_enabled
    yield conn
    conn.close()


def _health_check(conn, monkeypatch) -> list[int]:
    """Run the check a new request runs; returns one entry per `SELECT 1` it sent."""
    sent = []
    real = conn.is_usable
    monkeypatch.setattr(conn, "is_usable", lambda: sent.append(1) or real())
    conn.health_check_done = False
    conn.close_if_health_check_failed()
    return sent


def test_a_quiet_connection_is_kept_without_a_round_trip(own_connection, monkeypatch):
    raw = own_connection.connection
    assert _health_check(own_connection, monkeypatch) == []
    assert own_connection.connection is raw
    assert own_connection.health_check_done


def test_a_connection_the_server_closed_is_replaced_before_the_next_query(
    own_connection, monkeypatch
):
    raw = own_connection.connection
    old_pid = raw.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    deadline = time.monotonic() + 10
    while _quiet(raw) and time.monotonic() < deadline:  # the server's goodbye is on its way
        time.sleep(0.01)
    assert not _quiet(raw)
    assert _health_check(own_connection, monkeypatch) == [1]
    assert own_connection.connection is None  # dropped; the next query opens a new one
    with own_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


def test_a_connection_closed_on_this_side_is_not_quiet(own_connection):
    raw = own_connection.connection
    raw.close()
    assert not _quiet(raw)
