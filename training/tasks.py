"""Celery tasks of training: thin wrappers that take ids and call one service."""

from celery import shared_task

from training import services


@shared_task(
    name="training.tasks.training_run_execute", acks_late=True, reject_on_worker_lost=False
)
def training_run_execute(run_id: int) -> None:
    # A killed worker's run is found by its missing heartbeat and resumed on request, rather
    # than redelivered automatically into a possibly broken state.
    services.training_run_execute(run_id=run_id)


# Judging loads models: the same queue as training, one task at a time on the GPU worker.
@shared_task(name="training.tasks.judge_job_execute", queue="gpu", acks_late=True)
def judge_job_execute(job_id: int) -> None:
    from training import judges

    judges.judge_job_execute(job_id=job_id)


@shared_task(name="training.tasks.training_run_report", queue="gpu", acks_late=True)
def training_run_report(report_id: int) -> None:
    from training import reports

    reports.training_run_report(report_id=report_id)
