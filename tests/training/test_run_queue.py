"""Runs waiting on the single-worker `gpu` queue behind a running job are not re-sent: a real
worker takes three queued runs one after another while beat's job sweep runs all the time."""

import pytest
from django.utils import timezone

from core import jobs, queue
from tests.support.worker import wait_for
from tests.training.test_runs import WORDS, _snapshot
from training import services
from training.models import RunStatus, TrainingRun

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Longer than the moment between one run's end and the worker taking the next (milliseconds),
# shorter than the last run waits behind the first two.
RESEND_AFTER_S = 3
TASK = "training.tasks.training_run_execute"


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, tuple]]:
    """Every task this process publishes, by name and arguments."""
    sent = []
    publish = queue.publish

    def counted(task_name, *args, **options):
        sent.append((task_name, args))
        return publish(task_name, *args, **options)

    monkeypatch.setattr(queue, "publish", counted)
    monkeypatch.setattr(jobs, "publish", counted)
    return sent


def test_runs_queued_behind_a_running_run_each_run_once_without_a_second_message(
    celery_worker, tiny_contestant, settings, published
):
    settings.JOB_RESEND_AFTER_S = RESEND_AFTER_S
    # A message an earlier test left on the queue could name one of these runs' keys and start
    # it out of turn.
    for queue_name in ("default", "generate", "gpu"):
        celery_worker.settle(queue_name)
    log_start = len(celery_worker.lines)
    rows = [
        {"prompt": WORDS[i % 6], "chosen": WORDS[(i + 1) % 6], "rejected": WORDS[(i + 2) % 6]}
        for i in range(64)
    ]
    # The first run is long (1,600 steps: several seconds even on a fast machine with the worker
    # warm), so that the last one waits past the resend period behind it; the others are short.
    long, short = _snapshot("preference", rows), _snapshot("preference", rows[:16])
    runs = [
        services.training_run_create(
            kind="dpo",
            loss_type="sigmoid",
            base_model=tiny_contestant,
            snapshot=snapshot,
            hyperparameters={"batch_size": 4, "max_length": 64, "num_epochs": epochs},
        )
        for snapshot, epochs in ((long, 100), (short, 20), (short, 20))
    ]
    # Beat's sweep, as often as the test can run it, on the real clock: a sweep that pretended
    # a later moment would take a run that has just finished for a queue idle all along.
    waited_past = []
    ids = [r.pk for r in runs]

    def finished() -> bool:
        last = TrainingRun.objects.get(pk=runs[-1].pk)
        running = TrainingRun.objects.filter(pk__in=ids, status=RunStatus.RUNNING).exists()
        waited = timezone.now() - last.enqueued_at
        if last.status == RunStatus.QUEUED and running and waited.total_seconds() > RESEND_AFTER_S:
            waited_past.append(waited)
        jobs.jobs_sweep()
        return not TrainingRun.objects.filter(pk__in=ids).active().exists()

    wait_for(finished, timeout=600, interval=0.1)
    for run in TrainingRun.objects.filter(pk__in=[r.pk for r in runs]):
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert run.attempts == 1
    assert waited_past, "the last run never waited past the resend period behind a running one"
    assert published == [(TASK, (run.pk,)) for run in runs]
    received = [
        line for line in celery_worker.lines[log_start:] if TASK in line and "received" in line
    ]
    assert len(received) == 3, "".join(received)
