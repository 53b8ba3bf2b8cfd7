"""The database the vote benchmark runs on: created, migrated and seeded with users, API tokens,
contestants and anonymous battles whose one turn has two answers, ready to vote on; and checked
afterwards against what the clients were told."""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from _stack import ROOT, db_reset


def server_env(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{args.pg}/{args.db}",
        DJANGO_DEBUG="0",
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(var_dir),
        MODEL_CACHE_DIR=str(var_dir / "models"),
        CELERY_BROKER_URL="filesystem://",
        ARENA_VOTES_PER_MINUTE="0",
        HF_HUB_OFFLINE="1",
        LOG_LEVEL="WARNING",
    )
    env.pop("CACHE_URL", None)  # the default cache (a table of the database), as on a plain install
    for sub in ("broker/queue", "broker/processed", "broker/control"):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)
    return env


_NAMES = (
    "aurora basalt cobalt dune ember fjord garnet harbor iris juniper kestrel lumen marlin "
    "nimbus onyx prairie quartz raven sierra tundra umber vesper willow xenon yarrow zephyr"
).split()
_PROMPTS = [
    "Explain how a hash map handles collisions.",
    "Write a haiku about autumn rain.",
    "What is 17 * 23, and how do you check it?",
    "Give me three tips for a job interview.",
    "Summarise the causes of the French Revolution.",
    "How do I reverse a list in Python?",
    "Suggest a name for a bakery by the sea.",
    "Why is the sky blue?",
]
_PARAGRAPH = (
    "The short version is that it depends on what you need, but a few points hold in most "
    "cases. Start with the simplest thing that works, measure it, and only then refine it. "
)


def _answer(rng: random.Random, k: int) -> str:
    """A plausible answer with some Markdown, so that the style features have work to do."""
    parts = [_PARAGRAPH * rng.randint(1, 4)]
    if k % 3 == 0:
        parts.append("## Details\n" + "\n".join(f"- point {i}" for i in range(rng.randint(2, 6))))
    if k % 4 == 1:
        parts.append("**In short:** keep it simple.\n```python\nprint('done')\n```")
    return "\n\n".join(parts)


def seed_battles(args: argparse.Namespace, n_battles: int) -> list[tuple[str, str]]:
    """Users, tokens, contestants and ready battles; returns (battle public id, token) pairs."""
    rng = random.Random(args.seed)
    users, tokens, contestants = _seed_people(args)
    token_of = {t.user_id: t.key for t in tokens}
    items = []
    for start in range(0, n_battles, 2000):
        count = min(2000, n_battles - start)
        specs = []
        for i in range(start, start + count):
            a, b = rng.sample(contestants, 2)
            prompt = rng.choice(_PROMPTS)
            outputs = [_answer(rng, i), _answer(rng, i + 1)]
            if rng.random() < args.leak_share:
                outputs[0] = f"As {a.display_name}, I would say: " + outputs[0]
            specs.append((users[i % args.users], a, b, prompt, outputs))
        battles = _seed_answered_battles(specs)
        items += [(str(b.public_id), token_of[b.user_id]) for b in battles]
    return items


def _seed_people(args: argparse.Namespace) -> tuple[list, list, list]:
    """The voters, their API tokens, and the contestants, in one transaction."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from arena.models import Backend, Contestant

    now = timezone.now()
    User = get_user_model()
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(username=f"voter{i:05d}", password="!") for i in range(args.users)
        )
        tokens = Token.objects.bulk_create(
            Token(key=Token.generate_key(), user=u, created=now) for u in users
        )
        contestants = Contestant.objects.bulk_create(
            Contestant(
                name=f"{_NAMES[k % len(_NAMES)]}-{k + 1}b",
                display_name=f"{_NAMES[k % len(_NAMES)].title()} {k + 1}B",
                organization=f"{_NAMES[k % len(_NAMES)].title()} Labs",
                backend=Backend.LOCAL,
                model_path=f"/nonexistent/bench/{k}",
            )
            for k in range(args.contestants)
        )
    return users, tokens, contestants


def _seed_answered_battles(specs: list[tuple]) -> list:
    """One transaction: both answers, the battle and its first turn for each (user, a, b,
    prompt, outputs)."""
    from django.db import transaction
    from django.utils import timezone

    from arena import hygiene
    from arena.models import Battle, BattleTurn, Generation

    now = timezone.now()
    with transaction.atomic():
        generations = Generation.objects.bulk_create(
            Generation(
                contestant=side,
                messages=[{"role": "user", "content": prompt}],
                status="succeeded",
                output=out,
                finish_reason="stop",
                requested_by=user,
                started_at=now,
                finished_at=now,
            )
            for user, a, b, prompt, outputs in specs
            for side, out in zip((a, b), outputs, strict=True)
        )
        battles = Battle.objects.bulk_create(
            Battle(
                contestant_a=a,
                contestant_b=b,
                user=user,
                categories=(cats := hygiene.categorize([{"role": "user", "content": p}])),
                category=cats[0],
            )
            for user, a, b, p, _ in specs
        )
        BattleTurn.objects.bulk_create(
            BattleTurn(
                battle=battle,
                index=0,
                user_message=spec[3],
                generation_a=generations[2 * j],
                generation_b=generations[2 * j + 1],
            )
            for j, (battle, spec) in enumerate(zip(battles, specs, strict=True))
        )
    return battles


def setup_database(args: argparse.Namespace, env: dict[str, str], n_battles: int) -> list:
    """A fresh, migrated, seeded database; Django set up in this process to read it."""
    t0 = time.perf_counter()
    db_reset(args.pg, args.db)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    for key in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "VAR_DIR", "ARENA_VOTES_PER_MINUTE"):
        os.environ[key] = env[key]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    t1 = time.perf_counter()
    items = seed_battles(args, n_battles)
    print(
        f"  database {args.db}: migrated in {t1 - t0:.1f} s; seeded {args.users} users with "
        f"tokens, {args.contestants} contestants, {len(items)} ready battles in "
        f"{time.perf_counter() - t1:.1f} s"
    )
    from django.db import connection

    connection.close()
    return items


def verify(phases: list) -> dict:
    """Compare what the clients were told with what the database holds, over all phases."""
    from django.db.models import Sum

    from arena.models import Battle, Contestant

    records = [r for p in phases for r in p.records]
    acked = [r for r in records if r[0] == "vote" and r[3] == 200]
    sent_ids = {r[1] for r in records if r[0] == "vote"}
    ambiguous = {r[1] for r in records if r[0] == "vote" and r[3] != 200}
    acked_winner = {r[1]: r[2] for r in acked}
    replay_ok = [r for r in records if r[0] == "replay" and r[3] == 200]
    stored = dict(Battle.objects.voted().values_list("public_id", "winner"))
    stored = {str(k): v for k, v in stored.items()}
    counted = Battle.objects.counted().count()
    totals = Contestant.objects.aggregate(votes=Sum("elo_votes"), elo=Sum("elo"))
    n_contestants = Contestant.objects.count()
    replayed = {r[1] for r in records if r[0] == "replay"}
    return {
        "stored": len(stored),
        "acked": len(acked),
        "duplicates": len(acked) - len(acked_winner) + len(replay_ok),
        "unacked_stored": sorted(set(stored) - set(acked_winner)),
        "unsent_stored": sorted(set(stored) - sent_ids),
        "ambiguous": len(ambiguous),
        "acked_missing": sorted(set(acked_winner) - set(stored)),
        "wrong_winner": sorted(b for b, w in acked_winner.items() if stored.get(b, w) != w),
        "replays_changed": sorted(b for b in replayed if stored.get(b) != acked_winner.get(b)),
        "replays": len(replayed),
        "counted": counted,
        "elo_votes": totals["votes"] or 0,
        "elo_drift": abs((totals["elo"] or 0.0) - 1000.0 * n_contestants),
        "bad_bodies": sum(len(p.bad_bodies) + p.differ for p in phases),
        "checked": sum(p.checked for p in phases),
    }


def print_verification(v: dict) -> bool:
    checks = [
        (f"voted battles {v['stored']} == acknowledged votes {v['acked']}",
         v["stored"] == v["acked"]),
        ("every acknowledged battle voted once, with the winner sent "
         f"(missing {len(v['acked_missing'])}, wrong winner {len(v['wrong_winner'])}, "
         f"stored but not acknowledged {len(v['unacked_stored'])}, "
         f"stored but never sent {len(v['unsent_stored'])})",
         not (v["acked_missing"] or v["wrong_winner"] or v["unacked_stored"]
              or v["unsent_stored"])),
        (f"duplicates (a battle acknowledged twice, or a replay accepted): {v['duplicates']}",
         v["duplicates"] == 0),
        (f"replayed battles keep their first winner: {v['replays']} replayed, "
         f"{len(v['replays_changed'])} changed", not v["replays_changed"]),
        (f"Contestant.elo_votes sum {v['elo_votes']} == 2 x counted votes {v['counted']}",
         v["elo_votes"] == 2 * v["counted"]),
        (f"Elo sum conserved (drift {v['elo_drift']:.2e})", v["elo_drift"] < 1e-6 * 1000),
        ("200 responses reveal both models and the winner sent, and equal a later GET "
         f"({v['checked']} compared; bad: {v['bad_bodies']})", v["bad_bodies"] == 0),
    ]  # fmt: skip
    print("Database check (all phases):")
    for text, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {text}")
    if v["ambiguous"]:
        print(f"  note: {v['ambiguous']} votes got no 200 (error or refusal); none may be stored")
    return all(ok for _, ok in checks)
