"""Writes of training runs: start, execute (in a worker), cancel, resume, reap dead workers, and
register results back into the arena.

The numerical work happens in `training/core` (pure PyTorch); this module only moves data and
state between it and the database.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.models import Contestant
from arena.services import contestant_model_path
from core.jobs import (
    job_cancel_queued,
    job_claim,
    job_enqueue,
    job_fail,
    job_finish,
    job_heartbeat_thread,
    job_requeue,
)
from training.heldout import heldout_fields
from training.models import (
    ACTIVE_STATUSES,
    RL_KINDS,
    RewardModel,
    RunKind,
    RunStatus,
    TrainingRun,
)
from training.params import RunRequest
from training.validation import (  # noqa: F401 - also named through this module by its callers
    DEFAULTS,
    SNAPSHOT_FORMATS,
    RunError,
    RunSettingsError,
    _trainer,
    loss_types,
    run_config,
    run_request_build,
    training_run_validate,
    verifier_names,
)

logger = logging.getLogger(__name__)


def training_run_create(*, request: RunRequest | None = None, user=None, **fields) -> TrainingRun:
    """Store and queue a run. `request` comes from `run_request_build`; the fields of one may be
    given instead (scripts, tests, callers written before RunRequest), and are checked the same
    way. PPO and GRPO take exactly one reward source: a registered reward model or a verifier's
    name. Policy runs may name an `eval_judge` (a RewardModel not trained on their prompts)
    and an `eval_suite` (the report's prompts) for their evaluation report."""

    if request is None:
        request = run_request_build(**fields)
    elif fields:
        raise TypeError(f"give a RunRequest or its fields, not both: {', '.join(fields)}")
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=request.kind,
            loss_type=request.loss_type if request.kind == RunKind.DPO else "",
            base_model=request.base_model,
            snapshot=request.snapshot,
            hyperparameters=request.hyperparameters,
            judge=request.reward_model,
            verifier=request.verifier,
            eval_judge=request.eval_judge,
            eval_suite=request.eval_suite,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        job_enqueue(job=run)
    return run


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step."""
    if run.status == RunStatus.QUEUED:
        job_cancel_queued(job=run, cancel_requested=True)
    elif run.status == RunStatus.RUNNING:
        TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    else:
        raise RunError(f"This run is {run.status}; there is nothing to cancel.")
    run.refresh_from_db()
    return run


def training_run_resume(*, run: TrainingRun) -> TrainingRun:
    """Queue a failed or cancelled run again; it continues from its last checkpoint."""
    resumable = (RunStatus.FAILED, RunStatus.CANCELLED)
    if run.status not in resumable:
        raise RunError(f"Only failed or cancelled runs can resume; this one is {run.status}.")
    with transaction.atomic():
        job_requeue(job=run, from_statuses=resumable, cancel_requested=False)
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
        self.phase_started = 0.0

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
        run.progress = {"done": run.step, "total": run.total_steps, "unit": "steps"}
        run.log = "\n".join(self.lines)
        run.save(
            update_fields=["step", "total_steps", "metrics", "heartbeat_at", "progress", "log"]
        )
        self.last_write = time.monotonic()

    def phase(self, name: str, done: int, total: int) -> None:
        """A phase before the first step (DPO's reference pass): its own progress and a log
        line when it starts and ends, so that a run does not sit at "step 0" in silence."""
        if not total:
            self.log(f"{name}: read from the cache")
            return
        if done == 1:
            self.phase_started = time.monotonic()
            self.log(f"{name}: {total} batches")
        now = time.monotonic()
        if done < total and now - self.last_write < self.interval_s:
            return
        if done >= total:
            self.log(f"{name}: done in {now - self.phase_started:.1f} s")
        run = self.run
        run.progress = {"phase": name, "done": done, "total": total, "unit": "batches"}
        run.heartbeat_at = timezone.now()
        run.log = "\n".join(self.lines)
        run.save(update_fields=["progress", "heartbeat_at", "log"])
        self.last_write = now

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self.cancel and now - self.last_cancel_check >= self.interval_s:
            self.cancel = TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
            self.last_cancel_check = now
        return self.cancel


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _claim(run_id: int) -> TrainingRun | None:
    """Take a queued run (or a running one whose worker went silent, redelivered)."""
    if not job_claim(model=TrainingRun, pk=run_id):
        return None
    return TrainingRun.objects.select_related("base_model", "snapshot", "judge").get(pk=run_id)


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """The worker's side: train, report progress, honour cancellation, register the result.
    A run that is not queued (already running elsewhere, finished, cancelled) is left alone."""
    run = _claim(run_id)
    if run is None:
        return None
    from training.core.common import pick_device  # after the claim: importing torch is slow

    run.device = str(pick_device())
    run.save(update_fields=["device"])
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
        with job_heartbeat_thread(run):
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
        if run.kind == RunKind.DPO:
            calls["on_phase"] = reporter.phase
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
    reporter.log(f"{status}" + (f": {error}" if error else ""))
    reporter.flush()
    fields = {"checkpoint_dir": str(checkpoint) if checkpoint else ""}
    if status == RunStatus.FAILED:
        job_fail(job=run, error=error, **fields)
    else:
        job_finish(job=run, status=status, **fields)
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
                **heldout_fields(run.summary),
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


def training_run_reap_fields(run: TrainingRun) -> dict:
    """What the reaper stores on a run whose worker died: its last checkpoint, so that
    "resume" continues from it."""
    from training.core.checkpoint import latest_checkpoint

    checkpoint = latest_checkpoint(run_output_dir(run) / "train")
    return {"checkpoint_dir": str(checkpoint) if checkpoint else ""}


def active_statuses() -> tuple[str, ...]:
    return tuple(ACTIVE_STATUSES)
