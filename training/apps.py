from django.apps import AppConfig


def _run_reap_fields(run) -> dict:
    from training.services import training_run_reap_fields

    return training_run_reap_fields(run)


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self) -> None:
        from core.jobs import JobKind, job_kind_register

        job_kind_register(
            JobKind(
                model="training.TrainingRun",
                task="training.tasks.training_run_execute",
                queue="gpu",
                stale_after_s="TRAINING_HEARTBEAT_TIMEOUT_S",
                reap_error="The worker stopped responding (no heartbeat); resume to continue "
                "from the last checkpoint.",
                reap_fields=_run_reap_fields,
            )
        )
        job_kind_register(
            JobKind(
                model="training.JudgeJob",
                task="training.tasks.judge_job_execute",
                queue="gpu",
                stale_after_s="TRAINING_HEARTBEAT_TIMEOUT_S",
                reap_error="The worker stopped responding (no heartbeat). Start the job again.",
            )
        )
        job_kind_register(
            JobKind(
                model="training.EvaluationReport",
                task="training.tasks.training_run_report",
                queue="gpu",
                stale_after_s="TRAINING_HEARTBEAT_TIMEOUT_S",
                reap_error="The worker stopped responding (no heartbeat) while computing the "
                "report.",
            )
        )
