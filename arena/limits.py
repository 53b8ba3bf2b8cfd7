"""How many generations one user may ask for: a fixed one-minute window per user, counted in
the shared cache (every server process sees the same counts; Redis when CACHE_URL names it).

`/v1/chat/completions` and `POST /api/generations/` draw on the same allowance,
`GENERATIONS_PER_MINUTE`; arena battles have their own (`ARENA_BATTLES_PER_MINUTE`).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import cache

WINDOW_S = 60


def _count(name: str) -> int:
    """Add one to a counter and return it (incr first: the counter exists nearly always)."""
    try:
        return cache.incr(name)
    except ValueError:  # the first of its window, or evicted
        cache.add(name, 0, timeout=2 * WINDOW_S)
    try:
        return cache.incr(name)
    except ValueError:  # evicted between add and incr
        return 1


def _clock() -> float:
    return time.time()


def generation_rate_wait(user) -> int:
    """Count one generation asked by `user`; 0 when allowed, else the seconds until the
    window ends (the request is refused and counts anyway, so hammering does not help)."""
    per_minute = settings.GENERATIONS_PER_MINUTE
    if per_minute <= 0 or user is None or not user.is_authenticated:
        return 0
    now = _clock()
    window = int(now // WINDOW_S)
    if _count(f"rate:generations:u{user.pk}:{window}") <= per_minute:
        return 0
    return max(1, int((window + 1) * WINDOW_S - now + 0.999))


def rate_message(wait_s: int) -> str:
    return (
        f"Too many generations asked in the last minute (limit "
        f"{settings.GENERATIONS_PER_MINUTE} per minute); try again in {wait_s} s."
    )


# --- Requests waiting for a worker in this process ------------------------------------------
# A `/v1` call holds its server thread while a worker answers: with as many waiting calls as
# threads, nothing else (health checks, pages) would be served by this process.
_waiting = 0
_waiting_lock = threading.Lock()


def v1_wait_take() -> bool:
    """Take one of this process's `V1_WAITING_PER_PROCESS` places for a call that waits for
    a worker; False when all are taken (the call is refused, 503)."""
    global _waiting
    with _waiting_lock:
        if _waiting >= settings.V1_WAITING_PER_PROCESS:
            return False
        _waiting += 1
        return True


def v1_wait_release() -> None:
    global _waiting
    with _waiting_lock:
        _waiting = max(0, _waiting - 1)
