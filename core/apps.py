from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform"

    def ready(self) -> None:
        # The filesystem broker, media and the model cache need their folders before anything
        # publishes or consumes; creating them here covers the web server, workers and commands.
        import core.authentication  # noqa: F401 - its signals keep cached API tokens current
        from core.runtime import ensure_runtime_dirs

        ensure_runtime_dirs()
