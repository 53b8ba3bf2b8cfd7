"""The Celery application. Queues: `default` (light work), `generate` (model answers; a worker
keeps loaded models in memory between tasks) and `gpu` (training runs, one at a time)."""

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# One BLAS thread per worker process: small matrix work slows several-fold with two threads
# on a shared 2-core machine (set before NumPy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

app = Celery("rlhf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect  # the main process (the solo pool runs tasks there)
@worker_process_init.connect  # each prefork child
def _prepare_worker_process(**_kwargs) -> None:
    """Give each worker process its share of the CPU."""
    from django.conf import settings

    from core.runtime import configure_torch_threads

    configure_torch_threads(settings.TORCH_NUM_THREADS)
