"""Answer the demo project's ranking prompts with the demo's models, in this process, so that
annotators rank real model answers and the rankings' model leaderboard fills. `make run` starts
it in the background once the model is converted; each prompt's ranking item opens as soon as
its answers are written, and the arena's `generate` queue is never held up.

Safe to run again: a prompt that has a ranking item (gold ones included) is skipped.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from annotation import services
from annotation.models import Item, Project, TaskKind


class Command(BaseCommand):
    help = "Write the demo project's candidate answers with its models (once, in the background)."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo-assistant")
        parser.add_argument("--prompts", type=int, default=20, help="prompts ranked, gold included")
        parser.add_argument("--k", type=int, default=None, help="answers per prompt (project's K)")

    def handle(self, *args, project: str, prompts: int, k: int | None, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project {project!r}: run seed_demo first.")
        ranked = Item.objects.filter(project=target, kind=TaskKind.RANKING)
        done = set(ranked.values_list("prompt_id", flat=True))
        todo = [p for p in target.prompts.order_by("id")[:prompts] if p.pk not in done]
        started = time.monotonic()

        def said(i: int, item: Item) -> None:
            state = "open" if item.is_ready else "not opened (fewer than two answers written)"
            self.stdout.write(
                f"prompt {i + 1}/{len(todo)} answered by {item.completions.count()} models, "
                f"item {state} ({time.monotonic() - started:.0f} s)"
            )

        try:
            opened = services.candidates_answer_here(
                project=target, prompts=todo, k=k, on_prompt=said
            )
        except services.TaskError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"{target.name}: {opened} of {len(todo)} ranking items opened.")
        )
