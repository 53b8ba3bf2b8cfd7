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


@shared_task(name="training.tasks.training_runs_reap_silent")
def training_runs_reap_silent() -> int:
    return services.training_runs_reap_silent()


@shared_task(name="training.tasks.training_runs_requeue")
def training_runs_requeue() -> int:
    return services.training_runs_requeue()


# Judging loads models: the same queue as training, one task at a time on the GPU worker.
@shared_task(name="training.tasks.judge_job_execute", queue="gpu", acks_late=True)
def judge_job_execute(job_id: int) -> None:
    from training import judges

    judges.judge_job_execute(job_id=job_id)


@shared_task(name="training.tasks.training_run_report", queue="gpu", acks_late=True)
def training_run_report(run_id: int) -> None:
    from training import reports

    reports.training_run_report(run_id=run_id)


@shared_task(name="training.tasks.judge_jobs_requeue")
def judge_jobs_requeue() -> int:
    from training import judges

    return judges.judge_jobs_requeue()


@shared_task(name="training.tasks.training_reports_requeue")
def training_reports_requeue() -> int:
    from training import reports

    return reports.training_reports_requeue()
