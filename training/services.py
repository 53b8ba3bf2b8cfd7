"""Writes of training runs: start, execute (in a worker), cancel, resume, reap dead workers, and
register results back into the arena.

The numerical work happens in `training/core` (pure PyTorch); this module only moves data and
state between it and the database.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.models import Contestant
from arena.services import contestant_model_path
from core.queue import enqueue_on_commit, resend
from training.models import (
    ACTIVE_STATUSES,
    RL_KINDS,
    RewardModel,
    RunKind,
    RunStatus,
    TrainingRun,
)

logger = logging.getLogger(__name__)

# What each kind of run reads from a dataset snapshot (its export format).
SNAPSHOT_FORMATS = {
    RunKind.SFT: ("sft",),
    RunKind.REWARD: ("preference",),
    RunKind.DPO: ("preference", "kto"),
    # PPO/GRPO read prompts (and reference answers for verifiers) from either.
    RunKind.PPO: ("sft", "preference"),
    RunKind.GRPO: ("sft", "preference"),
}
# Defaults per kind, on top of the trainer's own dataclass defaults (sized for CPU demos).
DEFAULTS = {
    RunKind.SFT: {"learning_rate": 2e-5, "batch_size": 8, "num_epochs": 1, "max_length": 512},
    RunKind.REWARD: {"learning_rate": 1e-5, "batch_size": 8, "num_epochs": 1, "max_length": 512},
    RunKind.DPO: {"learning_rate": 5e-7, "batch_size": 8, "num_epochs": 1, "max_length": 512},
    RunKind.PPO: {
        "learning_rate": 3e-6,
        "batch_size": 8,
        "rollout_batch_size": 8,
        "max_new_tokens": 64,
    },
    RunKind.GRPO: {
        "learning_rate": 3e-6,
        "batch_size": 8,
        "rollout_batch_size": 4,
        "max_new_tokens": 64,
    },
}
# Settings a run may not choose: the platform decides where files go and how progress flows.
RESERVED = {"cache_dir", "device", "num_threads", "reward_model", "verifier"}


class RunError(Exception):
    """A run cannot be started or changed; the message says why."""


def _trainer(kind: str):
    from training.core import launch

    return launch._trainer(kind)


def loss_types() -> list[str]:
    from training.core.losses import LOSS_DEFAULTS

    return sorted(LOSS_DEFAULTS)


def verifier_names() -> list[str]:
    from training.core.verifiers import VERIFIERS

    return sorted(VERIFIERS)


def run_config(
    *, kind: str, loss_type: str, hyperparameters: dict, reward_path: str = "", verifier: str = ""
):
    """The trainer's config dataclass for these settings; RunError names a bad field."""
    config_cls, _ = _trainer(kind)
    values = {**DEFAULTS[kind], **hyperparameters}
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known) + sorted(set(values) & RESERVED)
    if unknown:
        raise RunError(f"Unknown or reserved settings for a {kind} run: {', '.join(unknown)}.")
    if kind == RunKind.DPO:
        values["loss_type"] = loss_type or "sigmoid"
    if kind in RL_KINDS:
        values |= {"reward_model": reward_path or None, "verifier": verifier or None}
    try:
        config = config_cls(**values)
        if kind == RunKind.DPO:
            config.loss_params()
    except (TypeError, ValueError) as exc:
        raise RunError(f"Invalid settings: {exc}") from None
    for name in ("learning_rate", "batch_size", "num_epochs"):
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise RunError(f"{name} must be positive.")
    config.num_threads = settings.TORCH_NUM_THREADS
    return config


def training_run_validate(
    *,
    kind: str,
    base_model: Contestant,
    snapshot,
    loss_type: str,
    hyperparameters: dict,
    reward_model=None,
    verifier: str = "",
    eval_judge=None,
) -> None:
    """Refuse invalid combinations before anything is queued."""
    if kind not in SNAPSHOT_FORMATS:
        raise RunError(f"Unknown run kind {kind!r}; choose one of {', '.join(SNAPSHOT_FORMATS)}.")
    if not base_model.is_local:
        raise RunError(f"{base_model.display_name} has no local weights to train from.")
    if snapshot.status != "ready":
        raise RunError("The dataset snapshot is not ready yet.")
    if snapshot.format not in SNAPSHOT_FORMATS[kind]:
        wanted = " or ".join(SNAPSHOT_FORMATS[kind])
        raise RunError(f"A {kind} run needs a {wanted} snapshot; this one is {snapshot.format}.")
    if kind == RunKind.DPO:
        if loss_type and loss_type not in loss_types():
            raise RunError(f"Unknown loss {loss_type!r}; choose one of {', '.join(loss_types())}.")
        if (snapshot.format == "kto") != (loss_type == "kto"):
            raise RunError("The KTO loss trains on a kto snapshot, the other losses on pairs.")
    elif loss_type:
        raise RunError("Only DPO-family runs take a loss type.")
    if kind in RL_KINDS:
        if bool(reward_model) == bool(verifier):
            raise RunError("A PPO or GRPO run needs exactly one reward: a judge or a verifier.")
        if verifier and verifier not in verifier_names():
            raise RunError(
                f"Unknown verifier {verifier!r}; choose one of {', '.join(verifier_names())}."
            )
    elif reward_model or verifier:
        raise RunError("Only PPO and GRPO runs take a judge or a verifier.")
    if eval_judge is not None:
        if kind == RunKind.REWARD:
            raise RunError("A reward-model run has no policy to evaluate; leave out eval_judge.")
        if not eval_judge.is_active:
            raise RunError(f"Judge {eval_judge.name} is not active.")
        if reward_model is not None and eval_judge.pk == reward_model.pk:
            raise RunError(
                "The evaluation judge must be held out: not the judge the run trains against."
            )
    run_config(
        kind=kind,
        loss_type=loss_type,
        hyperparameters=hyperparameters,
        reward_path=reward_model.path if reward_model else "",
        verifier=verifier,
    )


def training_run_create(
    *,
    kind: str,
    base_model: Contestant,
    snapshot,
    loss_type: str = "",
    hyperparameters: dict | None = None,
    reward_model=None,
    verifier: str = "",
    eval_judge=None,
    user=None,
) -> TrainingRun:
    """Validate and queue a run. PPO and GRPO take exactly one reward source: a registered
    reward model (`reward_model`, a RewardModel) or a verifier's name. Policy runs may name an
    `eval_judge` (a RewardModel, ideally not the one they trained against) that judges their
    evaluation report."""
    from training.tasks import training_run_execute

    hyperparameters = dict(hyperparameters or {})
    training_run_validate(
        kind=kind,
        base_model=base_model,
        snapshot=snapshot,
        loss_type=loss_type,
        hyperparameters=hyperparameters,
        reward_model=reward_model,
        verifier=verifier,
        eval_judge=eval_judge,
    )
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=kind,
            loss_type=loss_type if kind == RunKind.DPO else "",
            base_model=base_model,
            snapshot=snapshot,
            hyperparameters=hyperparameters,
            judge=reward_model,
            verifier=verifier,
            eval_judge=eval_judge,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        enqueue_on_commit(training_run_execute, run.id)
    return run


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step."""
    if run.status == RunStatus.QUEUED:
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True
        )
    elif run.status == RunStatus.RUNNING:
        TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    else:
        raise RunError(f"This run is {run.status}; there is nothing to cancel.")
    run.refresh_from_db()
    return run


def training_run_resume(*, run: TrainingRun) -> TrainingRun:
    """Queue a failed or cancelled run again; it continues from its last checkpoint."""
    from training.tasks import training_run_execute

    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise RunError(f"Only failed or cancelled runs can resume; this one is {run.status}.")
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run.pk, status=run.status).update(
            status=RunStatus.QUEUED, cancel_requested=False, error="", finished_at=None
        )
        if updated:
            enqueue_on_commit(training_run_execute, run.id)
    run.refresh_from_db()
    return run


# --- Execution (in a worker on the gpu queue) ---------------------------------------------------
HISTORY_LIMIT = 5000
LOG_LINES = 200


def run_output_dir(run: TrainingRun) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / str(run.pk)


def snapshot_rows(snapshot) -> list[dict]:
    """The snapshot's rows, from its JSONL file (the same bytes its content hash covers)."""
    from annotation.datasets import snapshot_file

    with snapshot_file(snapshot=snapshot, kind="jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class _Reporter:
    """Progress and cancellation between a trainer and the run's row, written at most once a
    second (and at the last step) so that a fast trainer does not flood the database."""

    def __init__(self, run: TrainingRun, interval_s: float = 1.0):
        self.run = run
        self.interval_s = interval_s
        self.last_write = 0.0
        self.last_cancel_check = 0.0
        self.cancel = False
        self.pending: list[dict] = []
        self.lines: list[str] = list(run.log.splitlines()[-LOG_LINES:])

    def log(self, line: str) -> None:
        self.lines = [*self.lines, f"{timezone.now():%H:%M:%S} {line}"][-LOG_LINES:]

    def progress(self, step: int, total: int, metrics: dict) -> None:
        self.pending.append({"step": step, **{k: _number(v) for k, v in metrics.items()}})
        now = time.monotonic()
        if now - self.last_write >= self.interval_s or step >= total:
            self.flush(step=step, total=total)

    def flush(self, *, step: int | None = None, total: int | None = None) -> None:
        run = self.run
        if step is not None:
            run.step, run.total_steps = step, total or run.total_steps
        if self.pending:
            last = self.pending[-1]
            self.log(
                f"step {run.step}/{run.total_steps} "
                + " ".join(
                    f"{k}={v:.4g}" for k, v in last.items() if k != "step" and isinstance(v, float)
                )
            )
        run.metrics = (run.metrics + self.pending)[-HISTORY_LIMIT:]
        self.pending = []
        run.heartbeat_at = timezone.now()
        run.log = "\n".join(self.lines)
        run.save(update_fields=["step", "total_steps", "metrics", "heartbeat_at", "log"])
        self.last_write = time.monotonic()

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self.cancel and now - self.last_cancel_check >= self.interval_s:
            self.cancel = TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
            self.last_cancel_check = now
        return self.cancel


class _Heartbeat:
    """Marks the run alive from a side thread while it trains, also through the long stretches
    without progress (loading the model, the reference pass, a slow first step), so that only
    a dead worker falls silent for TRAINING_HEARTBEAT_TIMEOUT_S."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.every_s = max(1.0, settings.TRAINING_HEARTBEAT_TIMEOUT_S / 4)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self.stop.wait(self.every_s):
                try:
                    TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                    logger.warning("Heartbeat of run %s not written", self.run_id, exc_info=True)
        finally:
            connection.close()


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _claim(run_id: int) -> TrainingRun | None:
    """Take a queued run (or a running one whose worker went silent, redelivered)."""
    now = timezone.now()
    silent = now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT_S)
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now
    ) or TrainingRun.objects.filter(
        pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=silent
    ).update(heartbeat_at=now)
    if not claimed:
        return None
    return TrainingRun.objects.select_related("base_model", "snapshot", "judge").get(pk=run_id)


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """The worker's side: train, report progress, honour cancellation, register the result.
    A run that is not queued (already running elsewhere, finished, cancelled) is left alone."""
    from training.core.common import pick_device

    run = _claim(run_id)
    if run is None:
        return None
    run.attempts += 1
    run.device = str(pick_device())
    run.save(update_fields=["attempts", "device"])
    reporter = _Reporter(run)
    output = run_output_dir(run)
    from training.core.checkpoint import latest_checkpoint

    if run.attempts == 1:
        # Nothing of this run exists yet: what the folder holds was left by a run of an earlier
        # database with the same id, and must be neither resumed from nor mixed with this one.
        shutil.rmtree(output / "train", ignore_errors=True)
        resume = None
    else:
        resume = latest_checkpoint(output / "train")
    reporter.log(
        f"attempt {run.attempts} on {run.device}"
        + (f", resuming from {resume.name}" if resume else "")
    )
    try:
        with _Heartbeat(run.pk):
            result = _train(run, reporter, output, resume)
    except Exception as exc:  # the run must end in a state that says what happened
        logger.exception("Training run %s failed", run.pk)
        return _finish(
            run,
            reporter,
            status=RunStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            output=output,
        )
    if result.status == "cancelled":
        return _finish(run, reporter, status=RunStatus.CANCELLED, output=output)
    return _succeed(run, reporter, result)


def _train(run: TrainingRun, reporter: _Reporter, output: Path, resume):
    _, train = _trainer(run.kind)
    config = run_config(
        kind=run.kind,
        loss_type=run.loss_type,
        hyperparameters=run.hyperparameters,
        reward_path=run.judge.path if run.judge else "",
        verifier=run.verifier,
    )
    rows = snapshot_rows(run.snapshot)
    if run.kind in RL_KINDS:
        # A demonstration's answer is the reference a verifier checks against.
        rows = [{**r, "answer": r.get("answer", r.get("completion"))} for r in rows]
    base = contestant_model_path(run.base_model)
    reporter.log(f"{len(rows)} rows from snapshot {run.snapshot_id}; base model {base}")
    reporter.flush()
    calls = {
        "on_progress": reporter.progress,
        "should_cancel": reporter.should_cancel,
        "resume_from": resume,
    }
    processes, torchrun_args = training_processes(), shlex.split(settings.TRAINING_TORCHRUN_ARGS)
    if processes == 1 and not torchrun_args:
        return train(config, rows, base, output / "train", **calls)
    # Several GPUs or machines: this task only watches; torchrun runs the ranks.
    from training.core.launch import train_under_torchrun

    reporter.log(
        f"torchrun: {processes} processes per node {' '.join(torchrun_args) or '--standalone'}"
    )
    reporter.flush()
    return train_under_torchrun(
        run.kind,
        config,
        rows,
        base,
        output / "train",
        processes=processes,
        log=reporter.log,
        torchrun_args=torchrun_args or ("--standalone",),
        **calls,
    )


def training_processes() -> int:
    """Training processes per node for one run: TRAINING_PROCESSES, or one per visible GPU."""
    if settings.TRAINING_PROCESSES > 0:
        return settings.TRAINING_PROCESSES
    import torch

    return max(1, torch.cuda.device_count())


def _finish(
    run: TrainingRun, reporter: _Reporter, *, status: str, output: Path, error: str = ""
) -> TrainingRun:
    from training.core.checkpoint import latest_checkpoint

    checkpoint = latest_checkpoint(output / "train")
    run.status = status
    run.error = error
    run.checkpoint_dir = str(checkpoint) if checkpoint else ""
    run.finished_at = timezone.now()
    reporter.log(f"{status}" + (f": {error}" if error else ""))
    reporter.flush()
    run.save(update_fields=["status", "error", "checkpoint_dir", "finished_at"])
    return run


def _succeed(run: TrainingRun, reporter: _Reporter, result) -> TrainingRun:
    run.error = ""  # a reaper that misjudged a slow stretch as a dead worker was wrong
    run.artifact_dir = result.model_dir or ""
    run.summary = {k: _number(v) for k, v in result.metrics.items()}
    run.data_hash = result.data_hash
    run.status = RunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    reporter.log("succeeded; model saved to " + run.artifact_dir)
    reporter.flush(step=result.total_steps or result.step, total=result.total_steps)
    with transaction.atomic():
        run.save(
            update_fields=["error", "artifact_dir", "summary", "data_hash", "status", "finished_at"]
        )
        training_run_register(run=run)
    return run


def training_run_register(*, run: TrainingRun) -> None:
    """Bring a finished run's result back into the platform, once: a policy becomes an arena
    contestant (its lineage: parent, run, snapshot) and its evaluation report is started; a
    reward model becomes a judge."""
    from training.reports import training_run_report_start

    base = run.base_model
    if run.kind == RunKind.REWARD:
        RewardModel.objects.get_or_create(
            run=run,
            defaults={
                "name": f"{base.name}-rm-{run.pk}",
                "base_model": base,
                "path": run.artifact_dir,
                "heldout_accuracy": run.summary.get("eval_accuracy"),
            },
        )
        return
    if run.result_contestant_id:
        return
    contestant, _ = Contestant.objects.get_or_create(
        name=f"{base.name}-{run.loss_type or run.kind}-{run.pk}"[:100],
        defaults={
            "display_name": f"{base.display_name} · {run.label}",
            "organization": base.organization,
            "license": base.license,
            "parent": base,
            "description": f"Trained by run #{run.pk} ({run.get_kind_display()}) on dataset "
            f"snapshot #{run.snapshot_id} (data {run.data_hash[:12]}).",
            "backend": "local",
            "model_path": run.artifact_dir,
            "system_prompt": base.system_prompt,
            "temperature": base.temperature,
            "top_p": base.top_p,
            "max_new_tokens": base.max_new_tokens,
        },
    )
    run.result_contestant = contestant
    run.save(update_fields=["result_contestant"])
    training_run_report_start(run=run)


def training_runs_reap_silent() -> int:
    """Runs whose worker stopped sending heartbeats are marked failed, with their last
    checkpoint kept so that "resume" continues from it."""
    from training.core.checkpoint import latest_checkpoint

    since = timezone.now() - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT_S)
    reaped = 0
    for run in TrainingRun.objects.silent(since=since):
        checkpoint = latest_checkpoint(run_output_dir(run) / "train")
        reaped += TrainingRun.objects.filter(
            pk=run.pk, status=RunStatus.RUNNING, heartbeat_at__lt=since
        ).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error="The worker stopped responding (no heartbeat); resume to continue from the "
            "last checkpoint.",
            checkpoint_dir=str(checkpoint) if checkpoint else "",
        )
    return reaped


def active_statuses() -> tuple[str, ...]:
    return tuple(ACTIVE_STATUSES)


def training_runs_requeue(*, older_than_s: int = 300) -> int:
    """Send again the runs still queued after `older_than_s` (their message was lost); a
    duplicate finds the run taken and does nothing."""
    from training.tasks import training_run_execute

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    waiting = TrainingRun.objects.filter(status=RunStatus.QUEUED, created_at__lt=cutoff)
    return len(resend(training_run_execute, waiting))
