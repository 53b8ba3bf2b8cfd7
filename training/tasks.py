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
