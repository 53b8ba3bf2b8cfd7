from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    """AlpacaEval-style evaluation: a judge compares each contestant's answers with a baseline's.

    The numerical core (`evaluation.metrics`) and the file formats (`evaluation.alpaca_formats`)
    are pure Python and never import Django. Evaluation runs and their reward-model judging are
    jobs of `core.jobs`, registered here."""

    name = "evaluation"
    verbose_name = "Evaluation"

    def ready(self) -> None:
        from core.jobs import JobKind, job_kind_register

        job_kind_register(
            JobKind(
                model="evaluation.EvaluationRun",
                task="evaluation.tasks.evaluation_run_execute",
                queue="generate",
                stale_after_s="EVALUATION_STALE_AFTER_S",
            )
        )
        job_kind_register(
            JobKind(
                model="evaluation.EvaluationJudging",
                task="evaluation.tasks.evaluation_judging_execute",
                queue="gpu",
                stale_after_s="EVALUATION_STALE_AFTER_S",
            )
        )
