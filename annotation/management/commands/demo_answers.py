"""Answer the demo project's ranking prompts with the demo's models, in this process, so that
annotators rank real model answers and the rankings' model leaderboard fills. `make run` starts
it in the background once the model is converted; each prompt's ranking item opens as soon as
its answers are written, and the arena's `generate` queue is never held up.

Safe to run again: a prompt whose ranking item is open (gold ones included) is skipped, and one
left half-answered is taken up again.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection

from annotation import services
from annotation.models import Item, Project, TaskKind

BUSY_TRIES, BUSY_PAUSE_S = 60, 10
VOTE_IMPORT_WAIT_S = 600


class Command(BaseCommand):
    help = "Write the demo project's candidate answers with its models (once, in the background)."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo-assistant")
        parser.add_argument("--prompts", type=int, default=20, help="prompts ranked, gold included")
        parser.add_argument("--k", type=int, default=None, help="answers per prompt (project's K)")
        parser.add_argument(
            "--after-vote-import",
            action="store_true",
            help="on SQLite, first wait (at most 10 min) for the demo's arena votes to be imported",
        )

    def handle(self, *args, project: str, prompts: int, k: int | None, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project {project!r}: run seed_demo first.")
        if options["after_vote_import"] and connection.vendor == "sqlite":
            self._wait_for_the_vote_import()
        started, opened = time.monotonic(), 0

        def said(i: int, item: Item) -> None:
            state = "open" if item.is_ready else "not opened (fewer than two answers written)"
            self.stdout.write(
                f"prompt {i + 1} answered by {item.completions.count()} models, item {state} "
                f"({time.monotonic() - started:.0f} s)"
            )

        for _ in range(BUSY_TRIES):
            todo = _unanswered(target, prompts)
            try:
                opened += services.candidates_answer_here(
                    project=target, prompts=todo, k=k, on_prompt=said
                )
                break
            except services.TaskError as exc:
                raise CommandError(str(exc)) from exc
            except OperationalError as exc:
                # SQLite has one writer: at start-up the demo's vote import holds it for a while.
                self.stderr.write(f"database busy ({exc}); again in {BUSY_PAUSE_S} s")
                time.sleep(BUSY_PAUSE_S)
        else:
            raise CommandError(f"The database stayed busy for {BUSY_TRIES * BUSY_PAUSE_S} s.")
        self.stdout.write(self.style.SUCCESS(f"{target.name}: {opened} ranking items opened."))

    def _wait_for_the_vote_import(self) -> None:
        """The main worker imports the demo's arena votes in one transaction (about a minute):
        SQLite has one writer, so answers written meanwhile would wait on it, or give up."""
        from arena.models import Battle, BattleSource

        path = settings.DEMO_ARENA_VOTES
        if not path or not Path(path).is_file():
            return
        deadline = time.monotonic() + VOTE_IMPORT_WAIT_S
        imported = Battle.objects.filter(source=BattleSource.IMPORT)
        if not imported.exists():
            self.stdout.write("waiting for the demo's arena votes to be imported")
        while not imported.exists() and time.monotonic() < deadline:
            time.sleep(5)


def _unanswered(project: Project, prompts: int) -> list:
    """The first `prompts` prompts that have no open ranking item (gold ones have theirs)."""
    done = set(
        Item.objects.filter(project=project, kind=TaskKind.RANKING, is_ready=True).values_list(
            "prompt_id", flat=True
        )
    )
    return [p for p in project.prompts.order_by("id")[:prompts] if p.pk not in done]
