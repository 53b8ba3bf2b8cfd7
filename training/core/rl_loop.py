"""The loop PPO and GRPO share: models, reward, prompt order, optimiser, mini-batch updates,
checkpoints, resume, progress, cancellation and the final model folder, in one process or
under `torchrun` (DDP).

Under torchrun every rank holds the policy (wrapped in DDP, so gradients are averaged), a
frozen reference and the reward source. At each step each rank takes its own contiguous share
of the step's prompts, samples and scores its answers (a GRPO group never spans ranks), and
makes the same number of updates; statistics that must be global (PPO's whitening) are summed
over ranks, logged metrics are averaged over ranks, and rank 0 alone writes files and reports
progress.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from training.core import distributed as D
from training.core.checkpoint import (
    CHECKPOINT_PREFIX,
    load_checkpoint,
    load_trainable_state_dict,
    rng_state,
    save_checkpoint,
    save_hf_folder,
    set_rng_state,
    trainable_state_dict,
)
from training.core.common import (
    TrainerHooks,
    TrainResult,
    autocast_context,
    configure_threads,
    hash_rows,
    load_causal_lm,
    load_tokenizer,
    set_seed,
)
from training.core.config import lr_lambda, make_optimizer, prepare_model
from training.core.rollout import PolicyWithValue, RolloutConfig, encode_prompts, make_rollouts
from training.core.verifiers import Row, make_reward_fn

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class RolloutRun:
    """One PPO or GRPO run. A trainer passes `step_fn(run, step) -> metrics` to `run`."""

    def __init__(
        self,
        kind: str,
        config: RolloutConfig,
        rows: Sequence[Row],
        base_model: str | Path,
        output_dir: str | Path,
        hooks: TrainerHooks,
        with_value: bool,
        with_reference: bool,
    ) -> None:
        configure_threads(config.num_threads)
        self.ctx = D.init_distributed(config.device, config.distributed_strategy)
        if self.ctx.enabled and self.ctx.strategy != "ddp":
            raise ValueError("PPO and GRPO run under torchrun with distributed_strategy 'ddp'")
        # Each rank draws its own samples; rank 0 draws what a single process would. DDP gives
        # every rank rank 0's initial weights (LoRA adapters start random).
        set_seed(config.seed + self.ctx.rank)
        self.kind, self.config, self.rows, self.hooks = kind, config, list(rows), hooks
        self.base_model, self.output_dir = base_model, Path(output_dir)
        self.device = self.ctx.device
        self.reward_fn = make_reward_fn(
            config.verifier, config.verifier_args, config.reward_model, self.device, config.dtype
        )
        self.tokenizer = load_tokenizer(base_model)
        self.prompts = encode_prompts(self.tokenizer, self.rows, config.max_prompt_length)
        self.ref: nn.Module | None = None
        if with_reference:
            self.ref = load_causal_lm(base_model, config.dtype, self.device)
            self.ref.eval().requires_grad_(False)
        lm = prepare_model(load_causal_lm(base_model, config.dtype, self.device), config)
        self.policy = PolicyWithValue(lm, with_value)
        # Updates go through `model` (DDP under torchrun); sampling and scoring use `policy`.
        self.model = D.wrap_module(self.ctx, self.policy)
        self.optimizer = make_optimizer(self.model, config)
        per_epoch = math.ceil(len(self.rows) / self.prompts_per_step)
        self.total_steps = config.max_steps or per_epoch * config.num_epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(config, self.total_steps)
        )
        self.data_hash = hash_rows(self.rows)
        self.step, self.history, self.extra_state = 0, [], {}
        self._orders: dict[int, list[int]] = {}

    @property
    def prompts_per_step(self) -> int:
        return self.config.rollout_batch_size * self.ctx.world_size

    # ------------------------------------------------------------------ data

    def prompt_indices(self, step: int) -> list[int]:
        """This rank's rows at `step`: its contiguous share of the step's slice of a stream of
        shuffled epochs (the same stream on every rank), so any step is found without state."""
        size = self.config.rollout_batch_size
        start = step * self.prompts_per_step + self.ctx.rank * size
        return [self._stream(j) for j in range(start, start + size)]

    def _stream(self, j: int) -> int:
        epoch, i = divmod(j, len(self.rows))
        if epoch not in self._orders:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            n = len(self.rows)
            self._orders[epoch] = (
                torch.randperm(n, generator=g).tolist() if self.config.shuffle else list(range(n))
            )
        return self._orders[epoch][i]

    def rollout(self, step: int, n: int) -> dict[str, Any]:
        """`n` sampled and scored answers per prompt of this rank at `step` (see
        `rollout.make_rollouts`)."""
        idx = self.prompt_indices(step)
        prompts, rows = [self.prompts[i] for i in idx], [self.rows[i] for i in idx]
        return make_rollouts(
            self.policy.lm, self.tokenizer, prompts, rows, n, self.config, self.reward_fn
        )

    # ------------------------------------------------------------------ updates

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """`t` summed over ranks: for statistics that must be those of the whole step."""
        return D.sum_over_ranks(self.ctx, t)

    def mean_over_ranks(self, metrics: dict[str, float]) -> dict[str, float]:
        return D.mean_over_ranks(self.ctx, metrics)

    def update(self, batch: Batch, loss_fn: LossFn) -> dict[str, float]:
        """`ppo_epochs` passes over this rank's `batch` (tensors with sequences first) in
        shuffled mini-batches of `batch_size`, one optimiser step each. Every rank holds as
        many sequences, so all make the same number of steps, which DDP needs. Returns each
        statistic's mean over the steps (this rank's)."""
        c = self.config
        size = next(iter(batch.values())).size(0)
        sums: dict[str, float] = {}
        n_updates = 0
        for _ in range(c.ppo_epochs):
            for idx in torch.randperm(size).split(c.batch_size):
                mb = {k: v[idx] for k, v in batch.items()}
                with autocast_context(self.device, c.bf16_autocast):
                    loss, stats = loss_fn(self.model, mb)
                stats["grad_norm"] = torch.tensor(self._optimizer_step(loss))
                stats["loss"] = loss.detach()
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n_updates += 1
        return {k: v / n_updates for k, v in sums.items()}

    def _optimizer_step(self, loss: torch.Tensor) -> float:
        loss.backward()
        norm = 0.0
        if self.config.max_grad_norm:
            norm = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> Path:
        """A checkpoint written by rank 0, with every rank's RNG state."""
        rngs = D.gather_objects(self.ctx, rng_state())
        path = self.output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{self.step}"
        if self.ctx.is_main:
            state = {
                "step": self.step,
                "history": self.history,
                "total_steps": self.total_steps,
                "data_hash": self.data_hash,
                "kind": self.kind,
                "world_size": self.ctx.world_size,
                "extra": self.extra_state,
                "config": self.config.settings(),
            }
            save_checkpoint(
                path,
                model_state=trainable_state_dict(self.policy),
                optimizer_state=self.optimizer.state_dict(),
                scheduler_state=self.scheduler.state_dict(),
                trainer_state=state,
                rng=rngs,
                keep_last=self.config.keep_checkpoints,
            )
        D.barrier(self.ctx)
        return path

    def resume(self, ckpt_dir: str | Path) -> None:
        state = load_checkpoint(ckpt_dir)
        ts = state["trainer_state"]
        if ts["data_hash"] != self.data_hash:
            raise ValueError("the checkpoint was trained on different data")
        if ts.get("kind") != self.kind:
            raise ValueError(f"the checkpoint is from a {ts.get('kind')} run, not {self.kind}")
        if ts.get("world_size", 1) != self.ctx.world_size:
            raise ValueError("resume with the same number of processes as the checkpoint")
        load_trainable_state_dict(self.policy, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"][self.ctx.rank])
        self.step, self.history, self.extra_state = ts["step"], ts["history"], ts["extra"]

    # ------------------------------------------------------------------ loop

    def run(
        self, step_fn: Callable[[RolloutRun, int], dict[str, float]], title: str
    ) -> TrainResult:
        started = time.perf_counter()
        last_saved = -1
        while self.step < self.total_steps:
            if self._cancel_requested():
                ckpt = str(self.save())
                return self._result("cancelled", None, ckpt, self._summary(started))
            metrics = step_fn(self, self.step)
            self.scheduler.step()
            self.step += 1
            metrics["learning_rate"] = self.scheduler.get_last_lr()[0]
            if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                self.history.append({"step": self.step, **metrics})
                if self.ctx.is_main:
                    self.hooks.progress(self.step, self.total_steps, metrics)
            if self.config.save_every and self.step % self.config.save_every == 0:
                self.save()
                last_saved = self.step
        ckpt = None
        if self.config.save_every:
            ckpt = str(self.save() if last_saved != self.step else self._ckpt_path())
        metrics = self._summary(started)
        return self._result("completed", str(self._save_model(title, metrics)), ckpt, metrics)

    def _cancel_requested(self) -> bool:
        asked = self.hooks.cancelled() if self.ctx.is_main else False
        return D.any_rank(self.ctx, asked)

    def _ckpt_path(self) -> Path:
        return self.output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{self.step}"

    def _summary(self, started: float) -> dict[str, float]:
        last = {k: v for k, v in self.history[-1].items() if k != "step"} if self.history else {}
        return {**last, "train_runtime_s": time.perf_counter() - started}

    def _save_model(self, title: str, metrics: dict[str, float]) -> Path:
        model_dir = self.output_dir / "model"
        if self.ctx.is_main:
            card = {
                "title": title,
                "base_model": str(self.base_model),
                "kind": self.kind,
                "data_hash": self.data_hash,
                "num_rows": len(self.rows),
                "settings": self.config.settings(),
                "metrics": metrics,
            }
            save_hf_folder(self.policy.lm, self.tokenizer, model_dir, card)
            if self.policy.value_head is not None:
                head = {
                    k: v.detach().cpu().contiguous()
                    for k, v in self.policy.value_head.state_dict().items()
                }
                save_file(head, str(self.output_dir / "value_head.safetensors"))
        D.barrier(self.ctx)
        return model_dir

    def _result(
        self, status: str, model_dir: str | None, ckpt: str | None, metrics: dict[str, float]
    ) -> TrainResult:
        return TrainResult(
            status,
            model_dir,
            ckpt,
            metrics,
            self.history,
            self.step,
            self.total_steps,
            self.data_hash,
        )
