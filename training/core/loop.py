"""The training loop every trainer shares: batches, optimiser, schedule, checkpoints, resume,
progress, cancellation and the final model folder.

A trainer tokenises its rows into examples, says how to collate them and how to compute a loss
from a batch (a `Task`), and hands the loaded model to `run_training`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.core import distributed as D
from training.core.batching import make_batches
from training.core.checkpoint import (
    CHECKPOINT_PREFIX,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    save_hf_folder,
    set_rng_state,
)
from training.core.common import (
    TrainerHooks,
    TrainResult,
    autocast_context,
    configure_threads,
    hf_model,
    set_seed,
)
from training.core.config import TrainConfig, lr_lambda, make_optimizer

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Task:
    """What a trainer plugs into the loop."""

    kind: str
    examples: list[Any]
    collate: Callable[[list[Any]], Batch]
    compute_loss: LossFn
    scorer: nn.Module
    lengths: list[int] = field(default_factory=list)
    # Fixed batch composition (KTO pairs mismatched rows within a batch); order still shuffles.
    fixed_batches: list[list[int]] | None = None
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None
    card: dict[str, Any] = field(default_factory=dict)
    # How many items a micro-batch's loss is a mean over (scored tokens for SFT). With gradient
    # accumulation each micro-batch is weighted by it, so that a step's gradient is the one of
    # a single large batch; None weighs micro-batches equally (a mean over sequences or pairs).
    loss_weight: Callable[[Batch], float] | None = None


@dataclass
class _Position:
    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class _Run:
    """One run of the loop; split into methods so each stays short."""

    def __init__(
        self,
        config: TrainConfig,
        task: Task,
        model: nn.Module,
        tokenizer: Any,
        output_dir: Path,
        hooks: TrainerHooks,
        ctx: D.DistContext,
        data_hash: str,
    ) -> None:
        self.config, self.task, self.model, self.tokenizer = config, task, model, tokenizer
        self.output_dir, self.hooks, self.ctx, self.data_hash = output_dir, hooks, ctx, data_hash
        self.wrapped = D.wrap_module(ctx, task.scorer)
        self.optimizer = make_optimizer(self.wrapped, config)
        self.steps_per_epoch = math.ceil(len(self._local_batches(0)) / config.grad_accum_steps)
        if self.steps_per_epoch == 0:
            raise ValueError("not enough training rows for one batch per process")
        # `max_steps`, when set, replaces the epoch count (as in transformers).
        self.total_steps = config.max_steps or self.steps_per_epoch * config.num_epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(config, self.total_steps)
        )
        self.pos = _Position()
        self.last_saved: Path | None = None
        self.last_saved_step = -1

    @property
    def _strategy(self) -> str:
        return self.ctx.strategy if self.ctx.enabled else "single"

    def _local_batches(self, epoch: int) -> list[list[int]]:
        c, t = self.config, self.task
        if t.fixed_batches is not None:
            g = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch)
            order = (
                torch.randperm(len(t.fixed_batches), generator=g).tolist()
                if c.shuffle
                else range(len(t.fixed_batches))
            )
            batches = [t.fixed_batches[i] for i in order]
        else:
            batches = make_batches(
                t.lengths,
                c.batch_size,
                seed=c.seed,
                epoch=epoch,
                shuffle=c.shuffle,
                group_by_length=c.group_by_length,
            )
        return D.shard_batches(self.ctx, batches)

    # ------------------------------------------------------------------ checkpoints

    def resume(self, ckpt_dir: str | Path) -> None:
        state = load_checkpoint(ckpt_dir)
        ts = state["trainer_state"]
        if ts["data_hash"] != self.data_hash:
            raise ValueError("the checkpoint was trained on different data")
        if (ts.get("world_size", 1), ts.get("strategy")) != (self.ctx.world_size, self._strategy):
            raise ValueError(
                "resume with the same number of processes and strategy as the checkpoint"
            )
        D.load_checkpoint_states(
            self.ctx, self.wrapped, self.optimizer, state["model"], state["optimizer"]
        )
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"][self.ctx.rank])
        self.pos = _Position(ts["step"], ts["epoch"], ts["step_in_epoch"], ts["history"])

    def save(self) -> Path:
        model_sd, optim_sd = D.checkpoint_states(self.ctx, self.wrapped, self.optimizer)
        rngs = D.gather_objects(self.ctx, rng_state())
        path = self.output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{self.pos.step}"
        if self.ctx.is_main:
            p = self.pos
            trainer_state = {
                "step": p.step,
                "epoch": p.epoch,
                "step_in_epoch": p.step_in_epoch,
                "history": p.history,
                "total_steps": self.total_steps,
                "data_hash": self.data_hash,
                "kind": self.task.kind,
                "world_size": self.ctx.world_size,
                "strategy": self._strategy,
                "config": self.config.settings(),
            }
            save_checkpoint(
                path,
                model_state=model_sd,
                optimizer_state=optim_sd,
                scheduler_state=self.scheduler.state_dict(),
                trainer_state=trainer_state,
                rng=rngs,
                keep_last=self.config.keep_checkpoints,
            )
        D.barrier(self.ctx)
        self.last_saved, self.last_saved_step = path, self.pos.step
        return path

    def result(
        self, status: str, model_dir: str | None, ckpt: str | None, metrics: dict[str, float]
    ) -> TrainResult:
        p = self.pos
        return TrainResult(
            status, model_dir, ckpt, metrics, p.history, p.step, self.total_steps, self.data_hash
        )

    # ------------------------------------------------------------------ steps

    def _step(self, micro: list[list[int]]) -> dict[str, float]:
        """One optimiser step over `micro` (gradient accumulation); returns its metrics."""
        sums: dict[str, torch.Tensor] = {}
        batches = [self.task.collate([self.task.examples[j] for j in idx]) for idx in micro]
        weights = [self.task.loss_weight(b) if self.task.loss_weight else 1.0 for b in batches]
        total = sum(weights) or 1.0
        for i, batch in enumerate(batches):
            batch = {k: v.to(self.ctx.device) for k, v in batch.items()}
            share = weights[i] / total
            # Under DDP only the last micro-batch all-reduces the accumulated gradients.
            last = i == len(batches) - 1
            no_sync = self.ctx.enabled and not last and hasattr(self.wrapped, "no_sync")
            sync = self.wrapped.no_sync() if no_sync else contextlib.nullcontext()
            with sync, autocast_context(self.ctx.device, self.config.bf16_autocast):
                loss, stats = self.task.compute_loss(self.wrapped, batch)
            (loss * share).backward()
            for k, v in {"loss": loss.detach(), **stats}.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float() * share
        if self.config.max_grad_norm:
            sums["grad_norm"] = torch.nn.utils.clip_grad_norm_(
                self.wrapped.parameters(), self.config.max_grad_norm
            )
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        # One device sync for all the metrics of the step.
        values = torch.stack([_local(v).to(self.ctx.device) for v in sums.values()]).tolist()
        return {**dict(zip(sums, values, strict=True)), "learning_rate": lr}

    def _cancel_requested(self) -> bool:
        asked = self.hooks.cancelled() if self.ctx.is_main else False
        return D.any_rank(self.ctx, asked)

    def train(self) -> str:
        """Run to the end (or cancellation); returns "completed" or "cancelled"."""
        c, accum = self.config, self.config.grad_accum_steps
        while self.pos.step < self.total_steps:
            batches = self._local_batches(self.pos.epoch)
            while (
                self.pos.step_in_epoch < self.steps_per_epoch and self.pos.step < self.total_steps
            ):
                if self._cancel_requested():
                    return "cancelled"
                s = self.pos.step_in_epoch
                metrics = D.mean_over_ranks(
                    self.ctx, self._step(batches[s * accum : (s + 1) * accum])
                )
                # A statistic can be undefined for a batch (KTO without a desirable row): leave
                # it out rather than report NaN, which JSON stores cannot hold. Filtered after
                # the cross-rank mean so that every rank reduces the same keys.
                metrics = {k: v for k, v in metrics.items() if math.isfinite(v) or k == "loss"}
                self.pos.step += 1
                self.pos.step_in_epoch += 1
                metrics["epoch"] = self.pos.epoch + self.pos.step_in_epoch / self.steps_per_epoch
                self._report(metrics)
                if c.save_every and self.pos.step % c.save_every == 0:
                    self.save()
            if self.pos.step_in_epoch >= self.steps_per_epoch:
                self.pos.epoch += 1
                self.pos.step_in_epoch = 0
        return "completed"

    def _report(self, metrics: dict[str, float]) -> None:
        p = self.pos
        if p.step % self.config.log_every == 0 or p.step == self.total_steps:
            p.history.append({"step": p.step, **metrics})
            if self.ctx.is_main:
                self.hooks.progress(p.step, self.total_steps, metrics)


def _local(value: torch.Tensor) -> torch.Tensor:
    """A plain scalar tensor (FSDP returns the gradient norm as a DTensor)."""
    full = getattr(value, "full_tensor", None)
    return (full() if full else value).detach().float().reshape(())


def begin_run(config: TrainConfig) -> D.DistContext:
    """What every trainer does first: threads, process group (under torchrun), seed."""
    configure_threads(config.num_threads)
    ctx = D.init_distributed(config.device, config.distributed_strategy)
    set_seed(config.seed)
    return ctx


def run_training(
    config: TrainConfig,
    task: Task,
    model: nn.Module,
    tokenizer: Any,
    output_dir: str | Path,
    hooks: TrainerHooks,
    ctx: D.DistContext,
    data_hash: str,
    resume_from: str | Path | None = None,
) -> TrainResult:
    """Train `model` on `task`; save checkpoints and the final Hugging Face folder."""
    run = _Run(config, task, model, tokenizer, Path(output_dir), hooks, ctx, data_hash)
    if resume_from:
        run.resume(resume_from)
    started = time.perf_counter()
    status = run.train()
    metrics = _summary(run.pos.history, time.perf_counter() - started)
    if status == "cancelled":
        return run.result("cancelled", None, str(run.save()), metrics)
    ckpt = None
    if config.save_every:
        ckpt = str(run.last_saved if run.last_saved_step == run.pos.step else run.save())
    if task.evaluate is not None:
        with torch.no_grad():
            metrics.update(task.evaluate(run.wrapped))
    return run.result("completed", str(_save_model(run, metrics)), ckpt, metrics)


def _save_model(run: _Run, metrics: dict[str, float]) -> Path:
    """The final folder, written by rank 0 (from weights gathered on every rank under FSDP)."""
    state = D.full_state_dict(run.ctx, run.wrapped)
    model_dir = run.output_dir / "model"
    if run.ctx.is_main:
        task = run.task
        card = dict(task.card)
        card.update(
            kind=task.kind,
            data_hash=run.data_hash,
            num_rows=len(task.examples),
            settings=run.config.settings(),
            metrics=metrics,
        )
        model = hf_model(run.model) if state is not None else run.model
        save_hf_folder(model, run.tokenizer, model_dir, card, state_dict=state)
    D.barrier(run.ctx)
    return model_dir


def _summary(history: list[dict[str, float]], elapsed: float) -> dict[str, float]:
    if not history:
        return {"train_runtime_s": elapsed}
    last = {k: v for k, v in history[-1].items() if k != "step"}
    losses = [h["loss"] for h in history]
    return {**last, "train_loss": sum(losses) / len(losses), "train_runtime_s": elapsed}
