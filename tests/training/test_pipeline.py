"""The whole loop on real workers with tiny models: rankings -> dataset snapshot -> DPO and
reward-model runs -> the new policy answers an arena battle. And a training process killed
mid-run is detected by its missing heartbeat and resumes from its last checkpoint."""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.datasets import Spec, snapshot_create
from annotation.models import DatasetSnapshot
from arena import battles
from arena.models import BattleMode, Generation
from arena.services import contestant_create
from core.jobs import job_kind_of, jobs_reap
from tests.annotation.factories import ranking_item
from tests.annotation.test_selectors import _rank
from tests.support.worker import database_url_for, wait_for
from tests.training.test_runs import WORDS, _snapshot
from training import services
from training.models import RewardModel, RunStatus, TrainingRun

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _refreshed(obj):
    obj.refresh_from_db()
    return obj


@pytest.fixture
def tiny_pair(tiny_contestant, tiny_model_dir):
    other = contestant_create(
        name="tiny-two",
        display_name="Tiny Two",
        backend="local",
        model_path=str(tiny_model_dir),
        temperature=0.0,
        max_new_tokens=6,
    )
    return tiny_contestant, other


def test_rankings_become_a_snapshot_then_models_that_enter_the_arena(
    celery_worker, project, make_annotator, tiny_pair
):
    for _ in range(8):
        ranking_item(project, k=2, contestants=list(tiny_pair))
    annotator = make_annotator()
    for _ in range(8):
        _rank(project, annotator, lambda a: a.display_order)
    snapshot = snapshot_create(
        name="prefs", spec=Spec(source="rankings", format="preference", project=project)
    )
    wait_for(lambda: _refreshed(snapshot).is_finished, timeout=120)
    assert snapshot.status == "ready" and snapshot.row_count == 8, snapshot.error

    small = {"batch_size": 4, "max_length": 64, "num_epochs": 1}
    dpo = services.training_run_create(
        kind="dpo",
        loss_type="sigmoid",
        base_model=tiny_pair[0],
        snapshot=snapshot,
        hyperparameters=small,
    )
    reward = services.training_run_create(
        kind="reward", base_model=tiny_pair[0], snapshot=snapshot, hyperparameters=small
    )
    for run in (dpo, reward):
        wait_for(lambda run=run: not _refreshed(run).is_active, timeout=240)
        assert run.status == RunStatus.SUCCEEDED, run.error + "\n" + celery_worker.log()
    assert RewardModel.objects.filter(run=reward).exists()

    policy = dpo.result_contestant
    battle = battles.battle_start(
        actor=battles.Actor(user=annotator),
        prompt="two plus two",
        mode=BattleMode.SIDE_BY_SIDE,
        contestant_a=policy,
        contestant_b=tiny_pair[0],
    )
    generation = Generation.objects.get(pk=battle.turns.get().generation_a_id)
    wait_for(lambda: _refreshed(generation).is_finished, timeout=120)
    assert generation.status == "succeeded" and generation.contestant == policy


# A worker process that dies (SIGKILL, nothing cleaned up) right after step {kill_at} has
# reached the run's row: the step, not the speed of the machine, decides where it stops.
WORKER = """
import os, signal
import django
django.setup()
from training import services

progress = services._Reporter.progress

def progress_then_die(self, step, total, metrics):
    progress(self, step, total, metrics)
    if step >= {kill_at}:
        self.flush(step=step, total=total)
        os.kill(os.getpid(), signal.SIGKILL)

services._Reporter.progress = progress_then_die
services.training_run_execute(run_id={run_id})
"""


def test_a_killed_training_process_is_detected_and_resumes_from_its_checkpoint(
    tiny_contestant,
):
    from django.db import connection

    rows = [
        {"prompt": WORDS[i % 6], "chosen": WORDS[(i + 1) % 6], "rejected": WORDS[(i + 2) % 6]}
        for i in range(400)
    ]
    snapshot = _snapshot("preference", rows)
    run = TrainingRun.objects.create(
        kind="dpo",
        loss_type="sigmoid",
        base_model=tiny_contestant,
        snapshot=snapshot,
        hyperparameters={"batch_size": 2, "max_length": 48, "save_every": 5, "num_epochs": 1},
    )
    env = {**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict)}
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER.format(run_id=run.pk, kill_at=12)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        assert process.wait(timeout=180) == -signal.SIGKILL  # the worker died mid-run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert _refreshed(run).status == RunStatus.RUNNING
    assert run.step == 12 and run.total_steps == 200  # past the checkpoint of step 10
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap(kind=job_kind_of(TrainingRun)) == 1
    assert _refreshed(run).status == RunStatus.FAILED and "checkpoint-" in run.checkpoint_dir
    services.training_run_resume(run=run)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2 and "resuming from checkpoint-10" in run.log
    assert run.step == run.total_steps == 200
    assert Path(run.result_contestant.model_path).is_dir()
    assert DatasetSnapshot.objects.get(pk=snapshot.pk).training_runs.count() == 1
