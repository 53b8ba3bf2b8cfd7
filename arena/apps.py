from django.apps import AppConfig


class ArenaConfig(AppConfig):
    name = "arena"

    def ready(self) -> None:
        from core.jobs import JobKind, job_kind_register

        job_kind_register(
            JobKind(
                model="arena.Generation",
                task="arena.tasks.generation_run",
                queue="generate",
                # One call to a model, without a heartbeat: running this long means dead.
                stale_after_s="GENERATION_STALE_AFTER_S",
                reap_error="The worker stopped answering before the generation finished; "
                "please retry.",
            )
        )
