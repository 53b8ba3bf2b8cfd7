from django.apps import AppConfig


def _build_reaped(snapshot) -> None:
    """A reaped build leaves no half-written files behind."""
    import shutil

    from annotation.datasets.build import snapshot_folder

    shutil.rmtree(snapshot_folder(snapshot), ignore_errors=True)


class AnnotationConfig(AppConfig):
    name = "annotation"

    def ready(self) -> None:
        from annotation.models import SNAPSHOT_JOB_STATUSES
        from annotation.selectors import model_outcomes
        from arena.leaderboards import annotation_outcomes_register
        from core.jobs import JobKind, job_kind_register

        # Rankings of model-written answers count on the arena's "with annotation" boards.
        annotation_outcomes_register(model_outcomes)

        job_kind_register(
            JobKind(
                model="annotation.DatasetSnapshot",
                task="annotation.tasks.snapshot_build",
                queue="default",
                # A live build records its progress every few seconds.
                stale_after_s="DATASET_BUILD_STALE_AFTER_S",
                reap_error="The build stopped making progress (no sign of life for "
                "DATASET_BUILD_STALE_AFTER_S: its worker probably died). Build it again.",
                reap_fields=lambda snapshot: {"row_count": 0},
                after_reap=_build_reaped,
                statuses=SNAPSHOT_JOB_STATUSES,
            )
        )
