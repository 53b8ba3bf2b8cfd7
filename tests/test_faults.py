"""Faults: with the broker down, battles, votes and generation requests still save and the
requests succeed; the work is sent again once the broker is back; a generation is never run
twice at once."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from arena import services
from arena.models import Battle, Generation, GenerationStatus
from tests.support.worker import database_url_for

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import django
django.setup()
from django.contrib.auth.models import User
from arena import battles
from arena.models import Generation
user = User.objects.get(username="ann")
actor = battles.Actor(user=user, ip="10.1.1.1")
battle = battles.battle_start(actor=actor, prompt="hello while the broker is down")
Generation.objects.update(status="succeeded", output="fine")
battles.battle_vote(battle=battle, actor=actor, winner="tie")
print("saved", battle.public_id)
"""


@pytest.mark.django_db(transaction=True)
def test_battles_and_votes_save_while_the_broker_is_down(
    annotator, tiny_contestant, tiny_model_dir
):
    from django.db import connection

    services.contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "saved" in result.stdout
    battle = Battle.objects.get()
    assert battle.winner == "tie" and battle.is_counted
    assert Generation.objects.count() == 2


@pytest.mark.django_db
def test_generations_left_pending_are_sent_again(tiny_contestant):
    old = Generation.objects.create(contestant=tiny_contestant, messages=[])
    Generation.objects.create(contestant=tiny_contestant, messages=[])  # just queued: left alone
    Generation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert services.generations_requeue(older_than_s=60) == 1


@pytest.mark.django_db
def test_a_generation_another_worker_is_answering_is_not_claimed_again(tiny_contestant):
    busy = Generation.objects.create(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "hi"}],
        status=GenerationStatus.RUNNING,
    )
    services.generation_execute(generation_id=busy.pk)
    busy.refresh_from_db()
    assert busy.status == GenerationStatus.RUNNING and busy.attempts == 0
    Generation.objects.filter(pk=busy.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    services.generation_execute(generation_id=busy.pk)  # its worker died: taken over
    busy.refresh_from_db()
    assert busy.status == GenerationStatus.SUCCEEDED
