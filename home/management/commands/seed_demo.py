"""Load the demo: role users, a project with ~50 prompts, and contestants built on SmolLM2.

Safe to run again: existing rows are kept and missing ones added.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation.models import Project, Prompt
from arena.models import Backend, Battle, BattleSource, Contestant
from arena.tasks import battles_import_file
from core.demo_prompts import DEMO_GUIDELINES, DEMO_PROMPTS
from core.roles import Role, role_groups_ensure, user_role_grant

DEMO_PASSWORD = "demo-password"
DEMO_USERS = {
    "annotator": [Role.ANNOTATOR],
    "reviewer": [Role.ANNOTATOR, Role.REVIEWER],
    "researcher": [Role.RESEARCHER],
    "admin": [Role.ADMIN],
}

_SMOLLM2 = {
    "organization": "Hugging Face",
    "license": "Apache-2.0",
    "backend": Backend.SMOLLM2,
}
DEMO_CONTESTANTS = [
    {
        "name": "smollm2-135m-helpful",
        "display_name": "SmolLM2 135M · helpful",
        "description": "SmolLM2-135M-Instruct with a helpful-assistant system prompt.",
        "system_prompt": "You are a helpful, honest and harmless assistant.",
        "temperature": 0.7,
        "top_p": 0.95,
        "max_new_tokens": 192,
    },
    {
        "name": "smollm2-135m-concise",
        "display_name": "SmolLM2 135M · concise",
        "description": "Asked to answer in at most two sentences.",
        "system_prompt": "Answer in at most two short sentences. Be precise.",
        "temperature": 0.3,
        "top_p": 0.9,
        "max_new_tokens": 96,
    },
    {
        "name": "smollm2-135m-greedy",
        "display_name": "SmolLM2 135M · greedy",
        "description": "No system prompt, greedy decoding.",
        "system_prompt": "",
        "temperature": 0.0,
        "top_p": 1.0,
        "max_new_tokens": 192,
    },
    {
        "name": "smollm2-135m-creative",
        "display_name": "SmolLM2 135M · creative",
        "description": "A playful persona with high-temperature sampling.",
        "system_prompt": "You are a witty, creative assistant who enjoys vivid language.",
        "temperature": 1.0,
        "top_p": 0.95,
        "max_new_tokens": 192,
    },
]


class Command(BaseCommand):
    help = "Load demo users, a demo project with prompts, and SmolLM2-based contestants."

    def add_arguments(self, parser):
        parser.add_argument(
            "--arena-votes",
            default=settings.DEMO_ARENA_VOTES,
            help="A public arena battle file to load into the leaderboard in the background "
            "(skipped when absent or when votes were imported before; '' to skip).",
        )

    def handle(self, *args, **options):
        with transaction.atomic():
            users = self._users()
            contestants = self._contestants()
            project = self._project(users["admin"], contestants)
        call_command("seed_annotation_demo", stdout=self.stdout)
        self._arena_votes(options["arena_votes"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {len(users)} users (password {DEMO_PASSWORD!r}), "
                f"{len(contestants)} contestants, {project.prompts.count()} prompts."
            )
        )

    def _arena_votes(self, path: str) -> None:
        if not path or not Path(path).is_file():
            return
        if Battle.objects.filter(source=BattleSource.IMPORT).exists():
            return
        battles_import_file.delay(str(Path(path).resolve()))
        self.stdout.write(f"Queued the import of real arena votes from {path} for the worker.")

    def _users(self) -> dict:
        role_groups_ensure()
        User = get_user_model()
        users = {}
        for username, roles in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.is_superuser = username == "admin"
                user.is_staff = username == "admin"
                user.save()
            for role in roles:
                user_role_grant(user=user, role=role)
            users[username] = user
        return users

    def _contestants(self) -> list[Contestant]:
        return [
            Contestant.objects.get_or_create(name=spec["name"], defaults={**_SMOLLM2, **spec})[0]
            for spec in DEMO_CONTESTANTS
        ]

    def _project(self, owner, contestants) -> Project:
        project, created = Project.objects.get_or_create(
            slug="demo-assistant",
            defaults={
                "name": "Demo: general assistant",
                "description": "Everyday questions across coding, maths, writing, advice, "
                "facts and safety.",
                "guidelines": DEMO_GUIDELINES,
                "overlap": 2,
                "candidates_per_prompt": 3,
                "created_by": owner,
            },
        )
        project.contestants.add(*contestants)
        if created:
            Prompt.objects.bulk_create(
                Prompt(
                    project=project,
                    messages=[{"role": "user", "content": text}],
                    category=category,
                    source="demo",
                )
                for category, texts in DEMO_PROMPTS.items()
                for text in texts
            )
        return project
