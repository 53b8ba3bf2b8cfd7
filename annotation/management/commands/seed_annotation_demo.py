"""Add annotation work to the demo project: human-written candidate answers (so no worker is
needed), ranking items over them, a few gold items and the demonstration items.

Run after `seed_demo`; safe to run again (a project that has ranking items gets no more).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation import services
from annotation.models import Item, Project, TaskKind

# Three answers of clearly different quality per prompt: the gold order is the list order.
_STYLES = [
    (
        "A careful answer",
        lambda q: (
            f"Here is a careful answer to *{q}*\n\n"
            "1. State the key fact first.\n2. Explain why it holds.\n3. Give a short example:\n\n"
            "```python\nprint('example')\n```"
        ),
    ),
    ("A short answer", lambda q: f'Short answer: it depends on the details of "{q}".'),
    ("An unhelpful answer", lambda q: "I don't know."),
]


class Command(BaseCommand):
    help = "Add demo candidate answers, ranking items and gold items to the demo project."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo-assistant")
        parser.add_argument("--prompts", type=int, default=20)
        parser.add_argument("--gold", type=int, default=3)

    def handle(self, *args, project: str, prompts: int, gold: int, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project {project!r}: run seed_demo first.")
        ranked = 0
        with transaction.atomic():
            opened = services.demonstration_items_open(project=target)
            already = Item.objects.filter(project=target, kind=TaskKind.RANKING).exists()
            fresh = [] if already else target.prompts.order_by("id")[:prompts]
            for n, prompt in enumerate(fresh):
                answers = [
                    services.completion_add_human(prompt=prompt, text=write(prompt.text[:80]))
                    for _, write in _STYLES
                ]
                is_gold = n < gold
                services.ranking_item_create(
                    prompt=prompt,
                    completions=answers,
                    is_gold=is_gold,
                    gold_groups=[[a.id] for a in answers] if is_gold else None,
                )
                ranked += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"{target.name}: {ranked} ranking items ({min(gold, ranked)} gold), "
                f"{opened} demonstration items opened."
            )
        )
