"""Celery tasks of the platform."""

from celery import shared_task


@shared_task(name="core.tasks.jobs_sweep")
def jobs_sweep() -> dict:
    """Beat: for every kind of job, fail the running ones whose worker died and re-send the
    queued ones whose message was lost."""
    from core.jobs import jobs_sweep as sweep

    return sweep()
