import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from arena.backends import GenerationError, smollm2_folder


class Command(BaseCommand):
    help = "Convert the bundled SmolLM2 model to a cached safetensors folder (once)."

    def handle(self, *args, **options):
        started = time.monotonic()
        try:
            folder = smollm2_folder(settings.MODEL_CACHE_DIR)
        except GenerationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"SmolLM2 ready in {folder} ({time.monotonic() - started:.1f} s)")
