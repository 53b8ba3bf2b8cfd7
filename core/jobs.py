"""Background jobs: one model and one piece of bookkeeping for every kind of background work
(generations, snapshot builds, training runs, judge jobs, evaluation reports...).

A kind of job is a concrete subclass of `Job` plus one `job_kind_register(JobKind(...))` line in
its app's `ready()`. Everything else is shared:

- `job_enqueue` publishes the job's task by name after commit (services never import tasks);
- `job_claim` is one conditional UPDATE: only a queued row, or a running row whose heartbeat
  stopped (a redelivered message of a dead worker), is taken, so a duplicate message does nothing;
- `job_heartbeat` (or the `job_heartbeat_thread` context) keeps a running job alive and returns
  whether this worker still owns it; `job_finish` / `job_fail` end it only if it is still ours;
- `jobs_sweep` (beat, `core.tasks.jobs_sweep`) reaps running jobs whose heartbeat stopped and
  re-sends queued jobs whose message is lost, for every registered kind.

When is a queued job's message lost? Not when it is old: a message behind a long training run
on the single-worker `gpu` queue waits for hours and is still in the broker. It is lost when the
queue it waits on has nothing to wait for: it has been queued for longer than
`JOB_RESEND_AFTER_S` and, for at least as long, no job of any kind on that queue was running
with a live heartbeat or finished (an idle worker takes a waiting message within seconds; in the
moment between two jobs the queue has just finished one, so it still counts as busy). A re-sent
job's `enqueued_at` is bumped, so it gets a full `JOB_RESEND_AFTER_S` again before the next
re-send.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.queue import publish, publish_on_commit

logger = logging.getLogger(__name__)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def _silent_since(since: datetime) -> Q:
    """A running job's worker has given no sign of life since `since` (a row made running
    without a heartbeat counts as silent)."""
    return Q(heartbeat_at__lt=since) | Q(heartbeat_at__isnull=True)


class JobQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=_words(self.model, ACTIVE))

    def finished(self):
        return self.filter(status__in=_words(self.model, FINISHED))

    def silent(self, *, since: datetime):
        """Running jobs whose worker has not beaten since `since`: it died."""
        return self.filter(_silent_since(since), status=_word(self.model, JobStatus.RUNNING))


class Job(models.Model):
    """The bookkeeping every background job shares. `progress` is `{"done": n, "total": m,
    "unit": "steps"}` (total may be missing when unknown)."""

    status = models.CharField(
        max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker took it.")
    enqueued_at = models.DateTimeField(
        default=timezone.now, help_text="When its message was last published."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    error = models.TextField(blank=True)
    progress = models.JSONField(default=dict, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def job_status(self) -> str:
        """The status in the shared words (a kind may store its domain's words)."""
        return job_status_of(type(self), self.status)

    @property
    def is_active(self) -> bool:
        return self.job_status in ACTIVE

    @property
    def is_finished(self) -> bool:
        return self.job_status in FINISHED

    @property
    def elapsed_s(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @property
    def progress_percent(self) -> int | None:
        done, total = self.progress.get("done"), self.progress.get("total")
        if not total:
            return 100 if self.job_status == JobStatus.SUCCEEDED else None
        return min(100, round(100 * (done or 0) / total))


# --- The registry -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobKind:
    """How one kind of job is run: its model ("app_label.Model"), the task that runs it (taking
    the job's id), the queue, and after how many seconds without a heartbeat a running job
    belongs to a dead worker (a number, or a settings name read at each use).

    `reap_error` is the reason stored on a reaped job; `reap_fields(job)` adds fields to store
    with it, `after_reap(job)` cleans up after it (e.g. half-written files)."""

    model: str | type[Job]
    task: str
    queue: str
    stale_after_s: int | str
    reap_error: str = "The worker stopped responding (no heartbeat); please try again."
    # {job status: the word the model stores}, for a kind that keeps its domain's words.
    statuses: dict[str, str] | None = None
    reap_fields: Callable[[Job], dict] | None = None
    after_reap: Callable[[Job], None] | None = None

    @property
    def model_class(self) -> type[Job]:
        return apps.get_model(self.model) if isinstance(self.model, str) else self.model

    @property
    def label(self) -> str:
        return self.model.lower() if isinstance(self.model, str) else self.model._meta.label_lower

    def stale_after(self) -> int:
        if isinstance(self.stale_after_s, str):
            return int(getattr(settings, self.stale_after_s))
        return self.stale_after_s


_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> JobKind:
    """Register a kind of job (from its app's `ready()`); registering it again replaces it."""
    _KINDS[kind.label] = kind
    return kind


def job_kind_unregister(kind: JobKind) -> None:
    _KINDS.pop(kind.label, None)


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def job_kind_of(model_or_job) -> JobKind:
    meta = model_or_job._meta
    return _KINDS[meta.label_lower]


def _word(model, status: str) -> str:
    """How `model` stores the job status `status`."""
    kind = _KINDS.get(model._meta.label_lower)
    return kind.statuses.get(status, status) if kind and kind.statuses else status


def _words(model, statuses) -> list[str]:
    return [_word(model, status) for status in statuses]


def job_status_of(model, word: str) -> str:
    """The job status of a stored status word of `model`."""
    kind = _KINDS.get(model._meta.label_lower)
    if kind and kind.statuses:
        return next((status for status, w in kind.statuses.items() if w == word), word)
    return word


# --- Transitions --------------------------------------------------------------------------------
def job_enqueue(*, job: Job) -> None:
    """Publish the job's task after the current transaction commits (the row must be queued)."""
    kind = job_kind_of(job)
    publish_on_commit(kind.task, job.pk, queue=kind.queue)


def job_claim(*, model: type[Job], pk: int) -> bool:
    """Take a job for this worker: a queued row, or a running row whose heartbeat stopped (the
    redelivered message of a dead worker). One conditional UPDATE, so two workers holding the
    same message never both own it. Returns whether this worker owns it now."""
    now = timezone.now()
    silent = now - timedelta(seconds=job_kind_of(model).stale_after())
    return bool(
        model.objects.filter(
            Q(status=_word(model, JobStatus.QUEUED))
            | (Q(status=_word(model, JobStatus.RUNNING)) & _silent_since(silent)),
            pk=pk,
        ).update(
            status=_word(model, JobStatus.RUNNING),
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
    )


def job_heartbeat(*, job: Job, progress: dict | None = None, **fields) -> bool:
    """Mark a running job alive (and store its progress and `fields`). False when it is no
    longer running: it was reaped or cancelled meanwhile, and the worker should stop."""
    now = timezone.now()
    values = {"heartbeat_at": now, **fields}
    if progress is not None:
        values["progress"] = progress
    running = _word(type(job), JobStatus.RUNNING)
    alive = type(job).objects.filter(pk=job.pk, status=running).update(**values)
    if alive:
        for name, value in values.items():
            setattr(job, name, value)
    return bool(alive)


def job_finish(*, job: Job, status: str = JobStatus.SUCCEEDED, error: str = "", **fields) -> bool:
    """running -> succeeded, failed or cancelled, with `fields`, only if the job is still ours
    (beat may have failed it while it was silent). Returns whether it was."""
    model = type(job)
    values = {
        "status": _word(model, status),
        "error": error,
        "finished_at": timezone.now(),
        **fields,
    }
    done = model.objects.filter(pk=job.pk, status=_word(model, JobStatus.RUNNING)).update(**values)
    if done:
        for name, value in values.items():
            setattr(job, name, value)
    return bool(done)


def job_fail(*, job: Job, error: str, **fields) -> bool:
    return job_finish(job=job, status=JobStatus.FAILED, error=error, **fields)


def job_cancel_queued(*, job: Job, **fields) -> bool:
    """queued -> cancelled, for a job no worker has taken yet."""
    return job_cancel(job=job, from_statuses=(JobStatus.QUEUED,), **fields)


def job_cancel(*, job: Job, from_statuses=ACTIVE, **fields) -> bool:
    """queued or running (`from_statuses`) -> cancelled. A worker running it learns at its next
    heartbeat (`job_heartbeat` answers False) and stops; what it wrote so far stays."""
    model = type(job)
    values = {"status": _word(model, JobStatus.CANCELLED), "finished_at": timezone.now(), **fields}
    active = _words(model, from_statuses)
    return bool(model.objects.filter(pk=job.pk, status__in=active).update(**values))


def job_requeue(*, job: Job, from_statuses=FINISHED, **fields) -> bool:
    """A finished job queued again (resume, retry) and published after commit."""
    model = type(job)
    values = {
        "status": _word(model, JobStatus.QUEUED),
        "error": "",
        "finished_at": None,
        "enqueued_at": timezone.now(),
        **fields,
    }
    queued = (
        model.objects.filter(pk=job.pk, status__in=_words(model, from_statuses)).update(**values)
        if job.job_status in from_statuses
        else 0
    )
    if queued:
        job_enqueue(job=job)
    return bool(queued)


@contextmanager
def job_heartbeat_thread(job: Job, *, every_s: float | None = None):
    """Beat for `job` from a side thread while the block runs, also through long stretches
    without progress (loading a model, a slow first step), so that only a dead worker falls
    silent. Yields an Event that is set once the job is no longer ours (reaped, cancelled)."""
    every = every_s or max(1.0, job_kind_of(job).stale_after() / 4)
    stop, lost = threading.Event(), threading.Event()
    model, pk = type(job), job.pk
    running = _word(model, JobStatus.RUNNING)

    def beat() -> None:
        from django.db import connection

        try:
            while not stop.wait(every):
                try:
                    if not model.objects.filter(pk=pk, status=running).update(
                        heartbeat_at=timezone.now()
                    ):
                        lost.set()
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                    logger.warning("Heartbeat of %s %s not written", model.__name__, pk)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat-{model.__name__}-{pk}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)


# --- Beat's sweep -------------------------------------------------------------------------------
def jobs_reap(*, kind: JobKind, now: datetime | None = None) -> int:
    """Fail the running jobs of `kind` whose heartbeat stopped, with the kind's reason."""
    now = now or timezone.now()
    since = now - timedelta(seconds=kind.stale_after())
    model = kind.model_class
    reaped = 0
    for job in model.objects.silent(since=since):
        extra = kind.reap_fields(job) if kind.reap_fields else {}
        # One conditional update each: a job that has just beaten is left alone.
        if model.objects.filter(
            _silent_since(since), pk=job.pk, status=_word(model, JobStatus.RUNNING)
        ).update(
            status=_word(model, JobStatus.FAILED), error=kind.reap_error, finished_at=now, **extra
        ):
            reaped += 1
            if kind.after_reap:
                kind.after_reap(job)
    return reaped


def queue_busy(*, queue: str, now: datetime | None = None) -> bool:
    """Whether `queue` has been busy in the last `JOB_RESEND_AFTER_S`: a job of any registered
    kind on it is running with a live heartbeat, or finished that recently (its worker is taking
    the next message). Queued messages of a busy queue are waiting, not lost."""
    now = now or timezone.now()
    recently = now - timedelta(seconds=settings.JOB_RESEND_AFTER_S)
    for kind in job_kinds():
        if kind.queue != queue:
            continue
        alive = now - timedelta(seconds=kind.stale_after())
        model = kind.model_class
        if model.objects.filter(
            Q(status=_word(model, JobStatus.RUNNING), heartbeat_at__gte=alive)
            | Q(finished_at__gte=recently)
        ).exists():
            return True
    return False


def jobs_lost(*, kind: JobKind, now: datetime | None = None):
    """The queued jobs of `kind` whose message is lost: queued for longer than
    `JOB_RESEND_AFTER_S` on a queue that has been idle at least that long."""
    now = now or timezone.now()
    model = kind.model_class
    if queue_busy(queue=kind.queue, now=now):
        return model.objects.none()
    cutoff = now - timedelta(seconds=settings.JOB_RESEND_AFTER_S)
    return model.objects.filter(status=_word(model, JobStatus.QUEUED), enqueued_at__lt=cutoff)


def jobs_resend(*, kind: JobKind, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Publish again the task of every lost job of `kind` (at most `limit`), bumping its
    `enqueued_at`. Claiming is exclusive, so a message that turns up after all does nothing."""
    now = now or timezone.now()
    lost = jobs_lost(kind=kind, now=now).order_by("enqueued_at")
    model, sent = kind.model_class, []
    for pk in lost.values_list("pk", flat=True)[:limit]:
        # Bump first: only the sweep that moves `enqueued_at` publishes (two beats never both).
        queued = _word(model, JobStatus.QUEUED)
        if model.objects.filter(pk=pk, status=queued, enqueued_at__lt=now).update(
            enqueued_at=now
        ) and publish(kind.task, pk, queue=kind.queue):
            sent.append(pk)
    return sent


def jobs_sweep(*, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Beat's one sweep over every registered kind: reap dead jobs, then re-send lost ones.
    Returns {kind: {"reaped": n, "resent": m}}."""
    now = now or timezone.now()
    done = {}
    for kind in job_kinds():
        reaped = jobs_reap(kind=kind, now=now)
        resent = jobs_resend(kind=kind, now=now)
        done[kind.label] = {"reaped": reaped, "resent": len(resent)}
    return done
