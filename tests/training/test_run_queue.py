"""Runs waiting on the single-worker `gpu` queue behind a running job are not re-sent: a real
worker takes three queued runs one after another while beat's job sweep runs all the time."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core import jobs, queue
from tests.support.worker import wait_for
from tests.training.test_runs import WORDS, _snapshot
from training import services
from training.models import RunStatus, TrainingRun

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RESEND_AFTER_S = 2
TASK = "training.tasks.training_run_execute"


def test_runs_queued_behind_a_running_run_each_run_once_without_a_second_message(
    celery_worker, tiny_contestant, settings, monkeypatch
):
    settings.JOB_RESEND_AFTER_S = RESEND_AFTER_S
    published = []
    publish = queue.publish

    def counted(task_name, *args, **options):
        published.append((task_name, args))
        return publish(task_name, *args, **options)

    monkeypatch.setattr(queue, "publish", counted)
    monkeypatch.setattr(jobs, "publish", counted)
    # A message an earlier test left on the queue could name one of these runs' keys and start
    # it out of turn.
    celery_worker.settle("gpu")
    log_start = len(celery_worker.lines)
    snapshot = _snapshot(
        "preference",
        [
            {"prompt": WORDS[i % 6], "chosen": WORDS[(i + 1) % 6], "rejected": WORDS[(i + 2) % 6]}
            for i in range(16)
        ],
    )
    runs = [
        services.training_run_create(
            kind="dpo",
            loss_type="sigmoid",
            base_model=tiny_contestant,
            snapshot=snapshot,
            # Long enough for the test to see the last run waiting (tiny model: seconds).
            hyperparameters={"batch_size": 4, "max_length": 64, "num_epochs": 12},
        )
        for _ in range(3)
    ]
    # Beat's sweep, as often as the test can run it. Whenever the last run is queued behind a
    # running one, the sweep also looks from the moment the last run has waited past the resend
    # period (a sweep's clock is its argument): however fast this machine trains, the case that
    # must not re-send is seen.
    overdue_sweeps = []
    ids = [r.pk for r in runs]

    def finished() -> bool:
        jobs.jobs_sweep()
        last = TrainingRun.objects.get(pk=runs[-1].pk)
        running = TrainingRun.objects.filter(pk__in=ids, status=RunStatus.RUNNING).exists()
        if last.status == RunStatus.QUEUED and running:
            overdue = last.enqueued_at + timedelta(seconds=RESEND_AFTER_S + 1)
            jobs.jobs_sweep(now=max(timezone.now(), overdue))
            overdue_sweeps.append(overdue)
        return not TrainingRun.objects.filter(pk__in=ids).active().exists()

    wait_for(finished, timeout=600, interval=0.1)
    for run in TrainingRun.objects.filter(pk__in=[r.pk for r in runs]):
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.attempts == 1
    assert overdue_sweeps, "the last run was never seen waiting behind a running one"
    assert published == [(TASK, (run.pk,)) for run in runs]
    received = [
        line for line in celery_worker.lines[log_start:] if TASK in line and "received" in line
    ]
    assert len(received) == 3, "".join(received)
