"""The one job model: claim, heartbeat, finish, reap and re-send, on a kind of job made for
these tests (a table created here), so that they describe `core.jobs` alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps
from django.utils import timezone

from core import jobs, queue
from core.jobs import Job, JobKind, JobStatus


@pytest.fixture
def sent(monkeypatch):
    """Every task published, as (name, args, queue)."""
    published = []

    def publish(task_name, *args, queue=None):
        published.append((task_name, args, queue))
        return True

    monkeypatch.setattr(queue, "publish", publish)
    monkeypatch.setattr(jobs, "publish", publish)
    return published


@pytest.fixture
def kinds(transactional_db):
    """Two kinds of job on the same `solo` queue and one on `other`, each with its own table."""
    with isolate_apps("core"):

        class Chore(Job):
            name = models.CharField(max_length=20, blank=True)

            class Meta:
                app_label = "core"

        class Errand(Job):
            class Meta:
                app_label = "core"

        class Elsewhere(Job):
            class Meta:
                app_label = "core"

        made = [
            JobKind(model=Chore, task="tests.chore", queue="solo", stale_after_s=60),
            JobKind(model=Errand, task="tests.errand", queue="solo", stale_after_s=60),
            JobKind(model=Elsewhere, task="tests.elsewhere", queue="other", stale_after_s=60),
        ]
        with connection.schema_editor() as editor:
            for kind in made:
                editor.create_model(kind.model)
        saved = jobs._KINDS.copy()
        jobs._KINDS.clear()
        for kind in made:
            jobs.job_kind_register(kind)
        try:
            yield made
        finally:
            jobs._KINDS.clear()
            jobs._KINDS.update(saved)
            with connection.schema_editor() as editor:
                for kind in made:
                    editor.delete_model(kind.model)


def _ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_a_queued_job_is_claimed_by_exactly_one_worker(kinds):
    chore = kinds[0].model.objects.create()
    assert jobs.job_claim(model=type(chore), pk=chore.pk) is True
    assert jobs.job_claim(model=type(chore), pk=chore.pk) is False  # a duplicate message
    chore.refresh_from_db()
    assert (chore.status, chore.attempts) == (JobStatus.RUNNING, 1)
    assert chore.started_at is not None and chore.heartbeat_at is not None


def test_a_running_job_whose_heartbeat_stopped_is_claimed_again_by_a_redelivery(kinds):
    model = kinds[0].model
    alive = model.objects.create(status=JobStatus.RUNNING, heartbeat_at=_ago(10), attempts=1)
    dead = model.objects.create(status=JobStatus.RUNNING, heartbeat_at=_ago(600), attempts=1)
    assert jobs.job_claim(model=model, pk=alive.pk) is False
    assert jobs.job_claim(model=model, pk=dead.pk) is True
    assert model.objects.get(pk=dead.pk).attempts == 2


def test_finished_and_cancelled_jobs_are_never_claimed(kinds):
    model = kinds[0].model
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        job = model.objects.create(status=status)
        assert jobs.job_claim(model=model, pk=job.pk) is False
        assert model.objects.get(pk=job.pk).status == status


def test_a_heartbeat_stores_progress_and_says_when_the_job_is_no_longer_ours(kinds):
    model = kinds[0].model
    job = model.objects.create()
    jobs.job_claim(model=model, pk=job.pk)
    job.refresh_from_db()
    assert jobs.job_heartbeat(job=job, progress={"done": 3, "total": 4, "unit": "steps"})
    assert model.objects.get(pk=job.pk).progress == {"done": 3, "total": 4, "unit": "steps"}
    assert job.progress_percent == 75
    model.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="reaped")
    assert jobs.job_heartbeat(job=job) is False


def test_a_job_is_finished_only_while_it_is_still_running(kinds):
    model = kinds[0].model
    job = model.objects.create()
    jobs.job_claim(model=model, pk=job.pk)
    job.refresh_from_db()
    assert jobs.job_finish(job=job, name="done") is True
    job.refresh_from_db()
    assert (job.status, job.name, job.finished_at is not None) == (
        JobStatus.SUCCEEDED,
        "done",
        True,
    )
    assert jobs.job_fail(job=job, error="too late") is False
    assert model.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_the_reaper_fails_only_running_jobs_whose_heartbeat_stopped_with_a_reason(kinds):
    kind = kinds[0]
    cleaned = []
    kind = JobKind(
        model=kind.model,
        task=kind.task,
        queue=kind.queue,
        stale_after_s=60,
        reap_error="its worker died",
        reap_fields=lambda job: {"name": "reaped"},
        after_reap=cleaned.append,
    )
    model = kind.model
    dead = model.objects.create(status=JobStatus.RUNNING, heartbeat_at=_ago(120))
    alive = model.objects.create(status=JobStatus.RUNNING, heartbeat_at=_ago(5))
    queued = model.objects.create(enqueued_at=_ago(3600))
    assert jobs.jobs_reap(kind=kind) == 1
    dead.refresh_from_db()
    assert (dead.status, dead.error, dead.name) == (JobStatus.FAILED, "its worker died", "reaped")
    assert [job.pk for job in cleaned] == [dead.pk]
    assert model.objects.get(pk=alive.pk).status == JobStatus.RUNNING
    assert model.objects.get(pk=queued.pk).status == JobStatus.QUEUED
    assert jobs.jobs_reap(kind=kind) == 0  # nothing twice


def test_a_lost_message_is_re_sent_once_and_its_enqueued_at_bumped(kinds, sent, settings):
    settings.JOB_RESEND_AFTER_S = 60
    kind = kinds[0]
    lost = kind.model.objects.create(enqueued_at=_ago(120))
    fresh = kind.model.objects.create(enqueued_at=_ago(5))
    assert jobs.jobs_resend(kind=kind) == [lost.pk]
    assert sent == [("tests.chore", (lost.pk,), "solo")]
    lost.refresh_from_db()
    assert lost.enqueued_at > _ago(5)
    assert jobs.jobs_resend(kind=kind) == []  # it has a full period again
    assert kind.model.objects.get(pk=fresh.pk).status == JobStatus.QUEUED


def test_a_job_waiting_behind_a_live_job_of_its_queue_is_not_re_sent(kinds, sent, settings):
    """However long it waits: a message behind a long job is still in the broker."""
    settings.JOB_RESEND_AFTER_S = 60
    chore, errand, elsewhere = kinds
    waiting = chore.model.objects.create(enqueued_at=_ago(7200))
    running = errand.model.objects.create(status=JobStatus.RUNNING, heartbeat_at=_ago(5))
    other_queue = elsewhere.model.objects.create(enqueued_at=_ago(7200))
    assert jobs.jobs_sweep() == {
        chore.label: {"reaped": 0, "resent": 0},
        errand.label: {"reaped": 0, "resent": 0},
        elsewhere.label: {"reaped": 0, "resent": 1},  # its own queue is idle
    }
    assert sent == [("tests.elsewhere", (other_queue.pk,), "other")]
    # The job ahead dies: the sweep fails it; once the queue has been idle for the resend
    # period, the waiting job is re-sent.
    errand.model.objects.filter(pk=running.pk).update(heartbeat_at=_ago(600))
    assert jobs.jobs_sweep()[errand.label]["reaped"] == 1
    assert jobs.jobs_sweep()[chore.label]["resent"] == 0  # it has just finished one
    later = timezone.now() + timedelta(seconds=61)
    assert jobs.jobs_sweep(now=later)[chore.label]["resent"] == 1
    assert ("tests.chore", (waiting.pk,), "solo") in sent


def test_a_queue_that_has_just_finished_a_job_is_taking_the_next_message(kinds, sent, settings):
    """Between two jobs no job is running, but the worker is about to take the next one."""
    settings.JOB_RESEND_AFTER_S = 60
    chore, errand, _ = kinds
    chore.model.objects.create(enqueued_at=_ago(7200))
    errand.model.objects.create(status=JobStatus.SUCCEEDED, finished_at=_ago(1))
    assert jobs.jobs_resend(kind=chore) == [] and sent == []


def test_queued_jobs_are_cancelled_and_finished_jobs_queued_again_and_published(
    kinds, sent, django_capture_on_commit_callbacks
):
    model = kinds[0].model
    job = model.objects.create()
    assert jobs.job_cancel_queued(job=job) is True
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.job_requeue(job=job) is True
    job.refresh_from_db()
    assert (job.status, job.finished_at) == (JobStatus.QUEUED, None)
    assert sent == [("tests.chore", (job.pk,), "solo")]
    assert jobs.job_requeue(job=job) is False  # only a finished job


def test_beat_runs_the_one_job_sweep(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "core.tasks.jobs_sweep" in tasks


def test_a_kind_may_keep_its_domains_status_words(kinds):
    """A snapshot build says pending, building, ready; the bookkeeping is the shared one."""
    chore = kinds[0]
    words = {
        JobStatus.QUEUED: "pending",
        JobStatus.RUNNING: "building",
        JobStatus.SUCCEEDED: "ready",
    }
    jobs.job_kind_register(
        JobKind(model=chore.model, task=chore.task, queue="solo", stale_after_s=60, statuses=words)
    )
    model = chore.model
    job = model.objects.create(status="pending")
    assert list(model.objects.active()) == [job] and job.job_status == JobStatus.QUEUED
    assert jobs.job_claim(model=model, pk=job.pk) is True
    job.refresh_from_db()
    assert job.status == "building" and job.is_active
    assert jobs.job_finish(job=job) is True
    job.refresh_from_db()
    assert job.status == "ready" and job.is_finished and not model.objects.active().exists()
