"""Celery tasks of evaluation: thin wrappers that take a job's id and call one service."""

from celery import shared_task


@shared_task(name="evaluation.tasks.evaluation_run_execute", acks_late=True)
def evaluation_run_execute(run_id: int) -> None:
    from evaluation.services import evaluation_run_execute as execute

    execute(run_id=run_id)


@shared_task(name="evaluation.tasks.evaluation_judging_execute", acks_late=True)
def evaluation_judging_execute(judging_id: int) -> None:
    from evaluation.services import evaluation_judging_execute as execute

    execute(judging_id=judging_id)
