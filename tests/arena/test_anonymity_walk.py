"""Nothing ties the sides of an unvoted anonymous battle to their models: every GET operation
of the API schema and every arena page, asked by the voter with each id that exists.

The two contestants have names, display names, system prompts, an endpoint and a folder that
appear nowhere else. Pages and endpoints about the battle or its answers must name neither
side; the model directories (which list every model, as they should) must show no system
prompt, endpoint or folder; generation listings must not hold the battle's answers at all."""

from __future__ import annotations

import itertools
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from arena import battles, services
from arena.models import Battle, Generation

pytestmark = pytest.mark.django_db

SECRETS = {
    "system_prompt": ["SYSPROMPT-ZEBRA-41", "SYSPROMPT-HERON-97"],
    "endpoint": ["zebra-endpoint-host.invalid", "ENDPOINT-MODEL-ZEBRA"],
}
NAMES = ["quartz-zebra-41", "Quixotic Zebra Forty", "umber-heron-97", "Nebulous Heron Ninety"]

# Directories of models: they list every model by name (public), never how one is served.
DIRECTORIES = (
    re.compile(r"^/api/contestants/"),
    re.compile(r"^/v1/models$"),
    re.compile(r"^/arena/(models|side-by-side|chat)/$"),
    re.compile(r"^/api/schema/"),
)


@pytest.fixture
def secret_pair(db, tiny_model_dir):
    """Two contestants and nothing else, so that every battle draws both."""
    zebra = services.contestant_create(
        name=NAMES[0],
        display_name=NAMES[1],
        backend="openai",
        endpoint_url="http://zebra-endpoint-host.invalid:9000/v1",
        endpoint_model="ENDPOINT-MODEL-ZEBRA",
        system_prompt="You are SYSPROMPT-ZEBRA-41.",
        temperature=0.0,
    )
    heron = services.contestant_create(
        name=NAMES[2],
        display_name=NAMES[3],
        backend="local",
        model_path=str(tiny_model_dir),
        system_prompt="You are SYSPROMPT-HERON-97.",
    )
    SECRETS["folder"] = [str(tiny_model_dir)]
    return zebra, heron


def _battle_with_answers(voter) -> tuple[Battle, list[int]]:
    """An unvoted battle whose last answers are in (one failed with a revealing reason), and
    an earlier draw replaced by a regenerate."""
    actor = battles.Actor(user=voter, session_key="walk", ip="10.9.9.9")
    battle = battles.battle_start(actor=actor, prompt="Tell me a fact about rivers.")
    first = _finish(battle, fail=False)
    battles.battle_regenerate(battle=battle, actor=actor)
    ids = first + _finish(battle, fail=True)
    assert len(set(ids)) == 4
    return battle, ids


def _finish(battle: Battle, *, fail: bool) -> list[int]:
    """Answer the last turn as a worker would; returns its generations' ids."""
    turn = battle.turns.select_related("generation_a", "generation_b").order_by("index").last()
    for generation in turn.generations():
        if fail and generation.contestant.name == NAMES[0]:
            Generation.objects.filter(pk=generation.pk).update(
                status="failed",
                error="The endpoint http://zebra-endpoint-host.invalid:9000/v1 failed after 3 "
                "attempts: ENDPOINT-MODEL-ZEBRA is overloaded (quartz-zebra-41)",
            )
        else:
            Generation.objects.filter(pk=generation.pk).update(
                status="succeeded", output="Rivers carry water to the sea."
            )
    return [g.pk for g in turn.generations()]


def _schema_urls(client: Client, values: dict[str, list]) -> list[str]:
    schema = client.get("/api/schema/", {"format": "json"}).json()
    urls = []
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        params = re.findall(r"{(\w+)}", path)
        choices = [values.get(p, ["1"]) for p in params]
        for combo in itertools.product(*choices):
            url = path
            for param, value in zip(params, combo, strict=True):
                url = url.replace("{" + param + "}", str(value))
            urls.append(url)
    return urls


def _arena_urls(values: dict[str, list]) -> list[str]:
    resolver = next(
        p for p in get_resolver().url_patterns if getattr(p, "namespace", "") == "arena"
    )
    urls = []
    for pattern in resolver.url_patterns:
        assert isinstance(pattern, URLPattern) and not isinstance(pattern, URLResolver)
        params = list(pattern.pattern.converters)
        for combo in itertools.product(*[values[p] for p in params]):
            kwargs = dict(zip(params, combo, strict=True))
            urls.append(reverse(f"arena:{pattern.name}", kwargs=kwargs))
    return urls


def _problems(url: str, body: str, battle_generations: list[int]) -> list[str]:
    found = [s for group in SECRETS.values() for s in group if s in body]
    if not any(d.search(url) for d in DIRECTORIES):
        found += [n for n in NAMES if n in body]
    if re.match(r"^/api/generations/(\?.*)?$", url):
        listed = re.findall(r'"id":\s*(\d+)', body)
        found += [f"generation {g}" for g in battle_generations if str(g) in listed]
    return [f"{url}: {', '.join(found)}"] if found else []


@pytest.mark.parametrize("role", ["annotator", "researcher"])
def test_no_page_or_endpoint_ties_an_unvoted_battle_to_its_models(
    role, secret_pair, annotator, researcher
):
    voter = {"annotator": annotator, "researcher": researcher}[role]
    battle, generation_ids = _battle_with_answers(voter)
    client = Client()
    client.force_login(voter)
    names = [c.name for c in secret_pair]
    values = {
        "public_id": [battle.public_id],
        "generation_id": generation_ids,
        "id": generation_ids,
        "pk": generation_ids,
        "name": names,
    }
    urls = _schema_urls(client, values) + _arena_urls(values)
    urls += ["/api/generations/?limit=500", "/api/battles/?limit=500"]
    assert f"/api/battles/{battle.public_id}/" in urls
    assert f"/arena/generations/{generation_ids[0]}/" in urls
    problems, answered = [], 0
    for url in urls:
        response = client.get(url)
        answered += response.status_code == 200
        if not getattr(response, "streaming", False):
            problems += _problems(url, response.content.decode(), generation_ids)
    assert not problems, "\n".join(problems)
    # The walk read real answers: the battle itself, its page, the model directories.
    assert answered >= 8
    page = client.get(f"/arena/battles/{battle.public_id}/").content.decode()
    assert "Rivers carry water to the sea." in page
    assert "This answer failed." in page
