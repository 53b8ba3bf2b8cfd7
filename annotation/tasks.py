"""Celery tasks of annotation: thin wrappers that take ids and call one service."""

from celery import shared_task


@shared_task(name="annotation.tasks.snapshot_build", acks_late=True, reject_on_worker_lost=True)
def snapshot_build(snapshot_id: int) -> str:
    """Build a dataset snapshot (the `default` queue: it streams, so it needs little memory)."""
    from annotation.datasets import snapshot_build as build

    return build(snapshot_id=snapshot_id).status
