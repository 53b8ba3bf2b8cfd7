"""Add annotation work to the demo project: the demonstration items, and gold ranking items
over human-written answers of known quality (the known order is the list order). The other
ranking items' answers are written by the demo's models: `demo_answers`, which `make run`
starts in the background once the model is converted.

Run after `seed_demo`; safe to run again (a prompt that has a ranking item gets no other).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation import services
from annotation.models import Item, Project, TaskKind

# Three answers of clearly different quality per gold prompt: the gold order is the list order.
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
    help = "Add the demo project's demonstration items and gold ranking items."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo-assistant")
        parser.add_argument("--gold", type=int, default=3)

    def handle(self, *args, project: str, gold: int, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project {project!r}: run seed_demo first.")
        added = 0
        with transaction.atomic():
            opened = services.demonstration_items_open(project=target)
            ranked = Item.objects.filter(project=target, kind=TaskKind.RANKING)
            done = set(ranked.values_list("prompt_id", flat=True))
            for prompt in [p for p in target.prompts.order_by("id")[:gold] if p.pk not in done]:
                answers = [
                    services.completion_add_human(prompt=prompt, text=write(prompt.text[:80]))
                    for _, write in _STYLES
                ]
                services.ranking_item_create(
                    prompt=prompt,
                    completions=answers,
                    is_gold=True,
                    gold_groups=[[a.id] for a in answers],
                )
                added += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"{target.name}: {added} gold ranking items, {opened} demonstration items opened."
            )
        )
