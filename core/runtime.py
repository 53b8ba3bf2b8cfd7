"""Process-level set-up shared by the web server, the workers and the management commands."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def ensure_runtime_dirs() -> None:
    """Create the folders the embedded defaults write into (broker, media, model cache)."""
    folders = [Path(settings.MEDIA_ROOT), Path(settings.MODEL_CACHE_DIR)]
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            folders.append(Path(options[key]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


def configure_torch_threads(n: int) -> None:
    """One thread per worker by default: two threads on a shared 2-core machine collapse
    throughput several-fold when the other core is busy."""
    try:
        import torch
    except ImportError:  # the web process of a deployment without torch
        return
    torch.set_num_threads(n)
