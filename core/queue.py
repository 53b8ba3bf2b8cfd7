"""Queueing that survives a broker outage.

Writes never depend on the broker: a task is published after the transaction commits, and a
publish that fails is logged, not raised, so the request that stored the rows still succeeds.
Beat re-sends work that has waited too long (`resend`, used by every `..._requeue` sweep), so
background work resumes once the broker is back.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args) -> None:
    def publish() -> None:
        try:
            task.delay(*args)
        except Exception:  # noqa: BLE001 - any broker failure; the row stays queued
            logger.warning(
                "Could not queue %s%s; it will be re-sent", task.name, args, exc_info=True
            )

    transaction.on_commit(publish)


def resend(task, waiting, *, limit: int | None = None) -> list:
    """Beat's sweep for work whose first message was lost: publish `task` again with the id of
    every row of `waiting` (a queryset of rows still waiting past their cutoff; at most
    `limit`). A worker only takes a row still in its waiting state, so a duplicate of work
    already done does nothing. Returns the ids sent."""
    ids = waiting.values_list("pk", flat=True)
    ids = list(ids[:limit] if limit else ids)
    for pk in ids:
        task.delay(pk)
    return ids
