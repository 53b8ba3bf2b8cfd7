"""Queueing that survives a broker outage.

Writes never depend on the broker: a task is published after the transaction commits, and a
publish that fails is logged, not raised, so the request that stored the rows still succeeds.
Tasks are published by name (`publish`, `publish_on_commit`), so a service never imports its
app's tasks. Beat re-sends jobs whose message was lost (`core.jobs.jobs_sweep`), so background
work resumes once the broker is back.
"""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def publish(task_name: str, *args, queue: str | None = None) -> bool:
    """Send the task `task_name` with `args` now (to `queue`, or where the task routes say).
    Returns False, after logging, when the broker could not take it."""
    from config.celery import app

    options = {"queue": queue} if queue else {}
    if app.conf.task_always_eager:  # send_task would skip CELERY_TASK_ALWAYS_EAGER
        app.tasks[task_name].apply(args=list(args))
        return True
    try:
        app.send_task(task_name, args=list(args), **options)
    except Exception:  # noqa: BLE001 - any broker failure; the row stays queued
        logger.warning("Could not queue %s%s; it will be re-sent", task_name, args, exc_info=True)
        return False
    return True


def publish_on_commit(task_name: str, *args, queue: str | None = None) -> None:
    """`publish` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: publish(task_name, *args, queue=queue))
