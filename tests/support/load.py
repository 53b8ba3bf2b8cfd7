"""Concurrent API clients for load tests: arena voters and annotators over HTTP, with bearer
tokens, each write sent with an `Idempotency-Key` and retried with the same key until the
server acknowledges it. Every attempt is recorded, so a test can say what the clients saw.

The seed runs in a child process on the database under test:

    DATABASE_URL=postgres://... python -m tests.support.load seed '{"voters": 4, ...}'

migrates it, and prints one JSON line: battle ids with their owner's token, annotator tokens and
the project's slug. Battles are anonymous, their answers already written (a dummy model path:
nothing is generated); ranking items have two human answers each.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field

WINNERS = ("model_a", "model_b", "tie", "both_bad")
ORDERS = ("A > B", "B > A", "A = B")
PROJECT_SLUG = "load-restart"


# --------------------------------------------------------------------------- seed (child process)


def seed(*, voters: int, battles_each: int, annotators: int, items: int, overlap: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {
        "battles": _seed_battles(voters=voters, battles_each=battles_each),
        "annotators": _seed_annotators(annotators=annotators, items=items, overlap=overlap),
        "project": PROJECT_SLUG,
    }


def _seed_battles(*, voters: int, battles_each: int) -> list[list[str]]:
    """[[battle public id, owner's token], ...], grouped by owner."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from arena import hygiene
    from arena.models import Backend, Battle, BattleTurn, Contestant, Generation

    messages = [{"role": "user", "content": "Why is the sky blue?"}]
    categories = hygiene.categorize(messages)
    with transaction.atomic():
        contestants = Contestant.objects.bulk_create(
            Contestant(name=f"load-{k}", display_name=f"Load {k}", backend=Backend.LOCAL,
                       model_path=f"/nonexistent/load/{k}")
            for k in range(4)
        )  # fmt: skip
        out = []
        for v in range(voters):
            user = get_user_model().objects.create_user(username=f"voter-{v}")
            token = Token.objects.create(user=user).key
            rng = random.Random(v)
            pairs = [rng.sample(contestants, 2) for _ in range(battles_each)]
            answers = Generation.objects.bulk_create(
                Generation(contestant=side, messages=messages, status="succeeded",
                           output=f"Rayleigh scattering, says {side.name}.")
                for pair in pairs for side in pair
            )  # fmt: skip
            battles = Battle.objects.bulk_create(
                Battle(contestant_a=a, contestant_b=b, user=user, categories=categories,
                       category=categories[0])
                for a, b in pairs
            )  # fmt: skip
            BattleTurn.objects.bulk_create(
                BattleTurn(battle=battle, index=0, user_message=messages[0]["content"],
                           generation_a=answers[2 * i], generation_b=answers[2 * i + 1])
                for i, battle in enumerate(battles)
            )  # fmt: skip
            out += [[str(b.public_id), token] for b in battles]
    return out


def _seed_annotators(*, annotators: int, items: int, overlap: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from annotation import services
    from annotation.imports import messages_hash
    from annotation.models import Completion, CompletionSource, Prompt
    from core.roles import user_role_grant

    project = services.project_create(name="Load: restart", slug=PROJECT_SLUG, overlap=overlap,
                                      gold_rate=0.0, task_kinds=["ranking"])  # fmt: skip
    with transaction.atomic():
        for k in range(items):
            messages = [{"role": "user", "content": f"Question {k}?"}]
            prompt = Prompt.objects.create(project=project, messages=messages,
                                           content_hash=messages_hash(messages))  # fmt: skip
            answers = [
                Completion.objects.create(prompt=prompt, source=CompletionSource.HUMAN,
                                          text=f"Answer {side} to question {k}.")
                for side in "xy"
            ]  # fmt: skip
            services.ranking_item_create(prompt=prompt, completions=answers)
    tokens = []
    for n in range(annotators):
        user = get_user_model().objects.create_user(username=f"annotator-{n}")
        user_role_grant(user=user, role="annotator")
        tokens.append(Token.objects.create(user=user).key)
    return tokens


# --------------------------------------------------------------------------- clients


@dataclass
class Attempt:
    kind: str  # vote | next | ranking
    started: float  # time.monotonic()
    seconds: float
    status: int | str  # HTTP status, or "error:<exception>" when no answer came
    detail: str = ""  # the JSON "detail" of an error answer ("" when there was none)


@dataclass
class LoadRecord:
    """What the clients sent and were told. list.append is atomic under the GIL."""

    attempts: list[Attempt] = field(default_factory=list)
    votes: dict[str, str] = field(default_factory=dict)  # battle -> winner, acknowledged (200)
    rankings: dict[int, int] = field(default_factory=dict)  # assignment -> ranking, acked (201)
    replayed: list[str] = field(default_factory=list)  # acknowledged by a stored answer
    refused: list[str] = field(default_factory=list)  # a 4xx: the write was not made
    unsettled: list[str] = field(default_factory=list)  # never acknowledged: outcome unknown


class Client:
    """One keep-alive session that sends a write until the server acknowledges it."""

    def __init__(self, base_url: str, token: str, record: LoadRecord, give_up_at: float):
        import requests

        self.base_url = base_url
        self.record = record
        self.give_up_at = give_up_at
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def send(self, kind: str, path: str, body: dict | None = None, key: str = ""):
        """POST until an answer other than 5xx comes (or time runs out); returns the response,
        or None if the write stayed unsettled."""
        import requests

        headers = {"Idempotency-Key": key} if key else {}
        while time.monotonic() < self.give_up_at:
            started = time.monotonic()
            try:
                response = self.session.post(self.base_url + path, json=body, headers=headers,
                                             timeout=(5, 20))  # fmt: skip
            except requests.RequestException as exc:
                error = f"error:{type(exc).__name__}"
                self.record.attempts.append(
                    Attempt(kind, started, time.monotonic() - started, error)
                )
                time.sleep(0.2)
                continue
            self.record.attempts.append(
                Attempt(kind, started, time.monotonic() - started, response.status_code,
                        _detail(response) if response.status_code >= 400 else "")
            )  # fmt: skip
            if response.status_code < 500:
                return response
            time.sleep(0.2)
        return None


def _detail(response) -> str:
    try:
        return str(response.json().get("detail", ""))
    except ValueError:
        return ""


def voter(base_url: str, battles: list[tuple[str, str]], record: LoadRecord,
          stop: threading.Event, give_up_at: float, seed: int) -> None:  # fmt: skip
    """Vote on each battle in turn (all owned by one user) until `stop`."""
    rng = random.Random(seed)
    client = Client(base_url, battles[0][1], record, give_up_at)
    for battle, _ in battles:
        if stop.is_set():
            return
        winner = rng.choice(WINNERS)
        response = client.send("vote", f"/api/battles/{battle}/vote/", {"winner": winner},
                               key=f"vote-{battle}")  # fmt: skip
        if response is None:
            record.unsettled.append(f"vote {battle}")
        elif response.status_code == 200:
            record.votes[battle] = winner
            if response.headers.get("Idempotent-Replayed"):
                record.replayed.append(f"vote {battle}")
        else:
            record.refused.append(f"vote {battle}: {response.status_code} {_detail(response)}")


def annotator(base_url: str, token: str, record: LoadRecord, stop: threading.Event,
              give_up_at: float, seed: int) -> None:  # fmt: skip
    """Ask for the next task and rank its two answers, until `stop` or an empty queue."""
    rng = random.Random(seed)
    client = Client(base_url, token, record, give_up_at)
    while not stop.is_set():
        response = client.send("next", f"/api/annotation/projects/{PROJECT_SLUG}/tasks/next/")
        if response is None or response.status_code != 200:
            if response is not None and response.status_code != 204:
                record.refused.append(f"next: {response.status_code} {_detail(response)}")
            return
        task = response.json()["id"]
        response = client.send("ranking", f"/api/annotation/tasks/{task}/ranking/",
                               {"order": rng.choice(ORDERS)}, key=f"ranking-{task}")  # fmt: skip
        if response is None:
            record.unsettled.append(f"ranking {task}")
        elif response.status_code == 201:
            record.rankings[task] = response.json()["id"]
            if response.headers.get("Idempotent-Replayed"):
                record.replayed.append(f"ranking {task}")
        else:
            record.refused.append(f"ranking {task}: {response.status_code} {_detail(response)}")


if __name__ == "__main__":
    if sys.argv[1:2] != ["seed"]:
        raise SystemExit("usage: python -m tests.support.load seed '<json arguments>'")
    print(json.dumps(seed(**json.loads(sys.argv[2]))))
