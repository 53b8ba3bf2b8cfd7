"""The default cache, a table of the database: counters increment atomically."""

import threading

import pytest
from django.core.cache import cache, caches
from django.db import connection

pytestmark = pytest.mark.django_db


def test_the_default_cache_is_the_database_table():
    assert type(caches["default"]).__module__ == "core.cache"


def test_a_counter_increments_and_a_missing_or_expired_one_is_refused():
    assert cache.add("n", 0, timeout=60)
    assert cache.incr("n") == 1
    assert cache.incr("n", 5) == 6
    assert cache.get("n") == 6
    with pytest.raises(ValueError):
        cache.incr("missing")
    cache.set("old", 1, timeout=-1)
    with pytest.raises(ValueError):
        cache.incr("old")


def test_a_counter_keeps_its_expiry_when_incremented():
    cache.set("n", 1, timeout=60)

    def expires():
        with connection.cursor() as cursor:
            cursor.execute("SELECT expires FROM django_cache WHERE cache_key LIKE %s", ["%:n"])
            return cursor.fetchone()[0]

    before = expires()
    cache.incr("n")
    assert expires() == before


@pytest.mark.django_db(transaction=True)
def test_increments_from_several_threads_are_never_lost():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers: nothing races")
    cache.set("n", 0, timeout=60)

    def bump():
        try:
            for _ in range(25):
                cache.incr("n")
        finally:
            connection.close()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("n") == 100
