"""Password guessing, slowed down the same way on the login page and on `POST /api/auth/token/`.

Failed logins are counted in the shared cache (every server process sees the same counts) by
three rules: one username from one address (`LOGIN_FAILURES_ALLOWED`), one address for any
username (`LOGIN_ADDRESS_FAILURES_ALLOWED`) and one username from any address
(`LOGIN_USERNAME_FAILURES_ALLOWED`). Past its allowance a rule does not lock anyone out: it
makes the next attempt wait, 1 second after the allowance is used up and twice as long after
each further failure, never more than `LOGIN_BACKOFF_MAX_S`. Only one attempt gets through
when a wait ends (the first to claim it), so parallel requests gain nothing. Counts are
forgotten `LOGIN_FAILURE_WINDOW_S` after the last failure.

A success from an address clears that username's count from that address, and makes the
address known for the user for `LOGIN_KNOWN_ADDRESS_DAYS`: the address-wide and username-wide
rules do not apply to it, so that a stranger guessing a user's password from elsewhere does not
keep the user out. The address is `core.client.client_address` (`X-Forwarded-For` only from
`TRUSTED_PROXIES`).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from core.client import client_address

MAX_EXPONENT = 30
# A wait's end is kept this long after it passes: whether a wait is over is decided by the
# clock against the stored end, never by the cache dropping the entry at some moment.
SLOT_GRACE_S = 600
# The time, as the throttle reads it (tests set it).
clock = time.time


@dataclass(frozen=True)
class Rule:
    key: str  # the failure count
    allowed: int
    waives: bool  # a known address is exempt

    @property
    def slot(self) -> str:
        """When the current wait ends (a timestamp), while one runs."""
        return self.key + ":until"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _normalise(username: str) -> str:
    return (username or "").strip().lower()[:150]


def _rules(address: str, username: str) -> list[Rule]:
    return [
        Rule(f"login:pair:{_digest(username, address)}", settings.LOGIN_FAILURES_ALLOWED, False),
        Rule(f"login:addr:{_digest(address)}", settings.LOGIN_ADDRESS_FAILURES_ALLOWED, True),
        Rule(f"login:user:{_digest(username)}", settings.LOGIN_USERNAME_FAILURES_ALLOWED, True),
    ]


def _known_key(address: str, username: str) -> str:
    return f"login:known:{_digest(username, address)}"


def backoff_seconds(failures: int, allowed: int) -> int:
    """The wait after `failures` failures under a rule that allows `allowed` (0: none)."""
    if failures < allowed:
        return 0
    return min(2 ** min(failures - allowed, MAX_EXPONENT), settings.LOGIN_BACKOFF_MAX_S)


def login_wait(request, username: str) -> int:
    """Seconds this login attempt must wait before it may be tried (0: try it now).

    An attempt let through past a rule's allowance claims that rule's next wait, so that
    attempts sent at the same moment are refused but one."""
    address, username = client_address(request), _normalise(username)
    rules = _rules(address, username)
    known_key = _known_key(address, username)
    values = cache.get_many([known_key] + [r.key for r in rules] + [r.slot for r in rules])
    rules = [r for r in rules if not (r.waives and values.get(known_key))]
    now = clock()
    due = [r for r in rules if (values.get(r.key) or 0) >= r.allowed]
    waits = [(values.get(r.slot) or 0) - now for r in due]
    if any(w > 0 for w in waits):
        return math.ceil(max(waits))
    for rule in due:
        # One turn per ended wait (named by when it ended): the first attempt to claim it goes
        # on and starts the next wait; its twins find the turn taken.
        wait = backoff_seconds(values[rule.key], rule.allowed)
        turn = f"{rule.slot}:{values.get(rule.slot) or 0:.6f}"
        if not cache.add(turn, 1, timeout=wait + SLOT_GRACE_S):
            return max(1, math.ceil((cache.get(rule.slot) or now + 1) - now))
        cache.set(rule.slot, now + wait, timeout=wait + SLOT_GRACE_S)
    return 0


def login_failed(request, username: str) -> None:
    address, username = client_address(request), _normalise(username)
    window = settings.LOGIN_FAILURE_WINDOW_S
    now = clock()
    for rule in _rules(address, username):
        cache.add(rule.key, 0, timeout=window)
        try:
            failures = cache.incr(rule.key)
        except ValueError:  # expired between add and incr
            failures = 1
            cache.set(rule.key, failures, timeout=window)
        cache.touch(rule.key, window)  # not every backend's incr keeps the expiry
        wait = backoff_seconds(failures, rule.allowed)
        if wait:
            cache.set(rule.slot, now + wait, timeout=wait + SLOT_GRACE_S)


def login_succeeded(request, username: str) -> None:
    address, username = client_address(request), _normalise(username)
    pair = _rules(address, username)[0]
    cache.delete_many([pair.key, pair.slot])
    days = settings.LOGIN_KNOWN_ADDRESS_DAYS
    if days:
        cache.set(_known_key(address, username), 1, timeout=days * 86400)


def wait_message(seconds: int) -> str:
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many failed logins; try again in {seconds} {unit}."
