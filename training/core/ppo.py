"""PPO for language models (RLHF as in InstructGPT), and the rollout machinery GRPO shares.

One step: take `rollout_batch_size` prompts, sample one answer each from the policy, score the
answers (reward model or verifier), compute the per-token KL penalty to the frozen reference,
GAE advantages (whitened) and returns, then `ppo_epochs` passes of clipped policy + value
updates over mini-batches of `batch_size` sequences. The value head is a linear layer on the
policy's last hidden state (a shared trunk, as Ziegler et al. 2019); it is saved beside the
model folder as `value_head.safetensors`, so `model/` stays a plain causal LM.

Runs are single-process (no torchrun): generation dominates and is not sharded here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from training.core import rl
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
    CancelFn,
    ProgressFn,
    TrainerHooks,
    TrainResult,
    autocast_context,
    configure_threads,
    hash_rows,
    hf_model,
    load_causal_lm,
    load_tokenizer,
    masked_mean,
    pick_device,
    set_seed,
    token_entropy,
)
from training.core.config import TrainConfig, lr_lambda, make_optimizer, prepare_model
from training.core.scoring import _head_is_plain, backbone_hidden
from training.core.verifiers import Row, make_reward_fn, row_prompt

Batch = dict[str, torch.Tensor]


@dataclass
class RolloutConfig(TrainConfig):
    """Settings PPO and GRPO share. `batch_size` is the mini-batch (sequences per optimiser
    step); a step of the run is one batch of rollouts and its updates; `max_steps` counts them.
    Set exactly one reward source: `reward_model` (a folder) or `verifier` (+ `verifier_args`)."""

    learning_rate: float = 1e-6
    rollout_batch_size: int = 16
    ppo_epochs: int = 1
    max_prompt_length: int = 512
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    cliprange: float = 0.2
    reward_model: str | None = None
    verifier: str | None = None
    verifier_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class PPOConfig(RolloutConfig):
    """PPO settings (defaults after TRL's former PPOTrainer). `kl_target` switches the adaptive
    KL controller on (Ziegler et al.); otherwise `kl_coef` stays fixed."""

    learning_rate: float = 3e-6
    ppo_epochs: int = 4
    kl_coef: float = 0.05
    kl_target: float | None = None
    kl_horizon: int = 10_000
    gamma: float = 1.0
    lam: float = 0.95
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    whiten_rewards: bool = False


# --------------------------------------------------------------------------- model


class PolicyWithValue(nn.Module):
    """A causal LM and a scalar value head on its last hidden state (named `lm`, not `inner`,
    so that `unwrap_model` keeps the head)."""

    def __init__(self, lm: nn.Module, with_value: bool = True) -> None:
        super().__init__()
        self.lm = lm
        self.value_head: nn.Linear | None = None
        if with_value:
            cfg = hf_model(lm).config
            cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
            p = next(lm.parameters())
            # Zero init: values start at 0, so the first updates do not push noise into the trunk.
            self.value_head = nn.Linear(cfg.hidden_size, 1).to(p.device, p.dtype)
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)


def token_outputs(
    lm: nn.Module,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 1.0,
    value_head: nn.Module | None = None,
    entropy: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-token log-probs (and entropy, values) of the completion tokens.

    input_ids (B, T) right-padded, no attention mask (as `scoring`); mask (B, T-1) marks the
    positions that predict completion tokens. Logits are divided by the sampling temperature,
    so log-probs are those of the distribution the answers were drawn from. Only masked
    positions go through the LM head. Returns `logp`, `entropy`, `values`, each (B, T-1).
    """
    base = hf_model(lm)
    sel = mask.bool()
    tgt = input_ids[:, 1:][sel]  # (N,)
    if _head_is_plain(base):
        hidden = backbone_hidden(lm, input_ids, None, None)[:, :-1]  # (B, T-1, H)
        logits = base.get_output_embeddings()(hidden[sel])  # (N, V)
    else:
        out = lm(input_ids=input_ids, use_cache=False, output_hidden_states=True)
        hidden = out.hidden_states[-1][:, :-1]
        logits = out.logits[:, :-1][sel]
    logits = logits.float() / temperature
    logp = logits.log_softmax(-1).gather(-1, tgt[:, None]).squeeze(-1)  # (N,)
    zeros = torch.zeros(sel.shape, dtype=logp.dtype, device=logp.device)
    result = {"logp": zeros.masked_scatter(sel, logp)}
    if entropy:
        result["entropy"] = zeros.masked_scatter(sel, token_entropy(logits).detach())
    if value_head is not None:
        result["values"] = value_head(hidden).squeeze(-1).float() * sel  # (B, T-1)
    return result


# --------------------------------------------------------------------------- prompts, rollouts


def encode_prompts(tokenizer: Any, rows: Sequence[Row], max_length: int) -> list[list[int]]:
    """Prompt ids of each row (chat template with a generation prompt for messages); long
    prompts keep their end, which is what the answer continues."""
    out = []
    for row in rows:
        prompt = row_prompt(row)
        if isinstance(prompt, list):
            text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(prompt)["input_ids"]
        if not ids:
            raise ValueError("a row has an empty prompt")
        out.append(ids[-max_length:])
    return out


@torch.no_grad()
def sample_completions(
    lm: nn.Module,
    prompts: list[list[int]],
    n: int,
    config: RolloutConfig,
    pad_id: int,
    eos_id: int | None,
) -> list[list[int]]:
    """`n` sampled answers per prompt (prompt-major), each cut after its first EOS."""
    device = next(lm.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    for i, p in enumerate(prompts):  # left padding: every answer starts at the same column
        ids[i, width - len(p) :] = torch.tensor(p)
        attn[i, width - len(p) :] = 1
    was_training = lm.training
    lm.eval()
    # top_k=0: sample from the full distribution, the one whose log-probs PPO optimises.
    gen = lm.generate(
        input_ids=ids.to(device),
        attention_mask=attn.to(device),
        do_sample=True,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=0,
        max_new_tokens=config.max_new_tokens,
        num_return_sequences=n,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
    )[:, width:].tolist()
    lm.train(was_training)
    out = []
    for seq in gen:
        if eos_id is not None and eos_id in seq:
            seq = seq[: seq.index(eos_id) + 1]
        out.append(seq)
    return out


def pack_rollouts(
    prompts: list[list[int]], completions: list[list[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded prompt + answer rows and the mask of positions predicting answer tokens.
    # -> input_ids (B, T), mask (B, T-1)"""
    width = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width - 1), dtype=torch.bool)
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        mask[i, len(p) - 1 : len(p) + len(c) - 1] = True
    return ids, mask


# --------------------------------------------------------------------------- the run


class RolloutRun:
    """What PPO and GRPO share: models, reward, prompt order, optimiser, checkpoints, resume,
    progress and cancellation. A trainer passes `step_fn(run, step) -> metrics`."""

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
        set_seed(config.seed)
        self.kind, self.config, self.rows, self.hooks = kind, config, list(rows), hooks
        self.base_model, self.output_dir = base_model, Path(output_dir)
        self.device = pick_device(config.device)
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
        self.optimizer = make_optimizer(self.policy, config)
        per_epoch = math.ceil(len(self.rows) / config.rollout_batch_size)
        self.total_steps = config.max_steps or per_epoch * config.num_epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(config, self.total_steps)
        )
        self.data_hash = hash_rows(self.rows)
        self.step, self.history, self.extra_state = 0, [], {}
        self._orders: dict[int, list[int]] = {}

    # ------------------------------------------------------------------ data

    def prompt_indices(self, step: int) -> list[int]:
        """Rows of `step`: a stream of shuffled epochs, so any step is found without state."""
        n, size = len(self.rows), self.config.rollout_batch_size
        out = []
        for j in range(step * size, (step + 1) * size):
            epoch, i = divmod(j, n)
            if epoch not in self._orders:
                g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
                self._orders[epoch] = (
                    torch.randperm(n, generator=g).tolist()
                    if self.config.shuffle
                    else list(range(n))
                )
            out.append(self._orders[epoch][i])
        return out

    def rollout(self, step: int, n: int) -> dict[str, Any]:
        """Sample `n` answers per prompt of `step` and score them.

        Returns `input_ids` (B, T), `mask` (B, T-1), `scores` (B,), `texts`, `rows`; B = prompts
        x n, prompt-major.
        """
        idx = self.prompt_indices(step)
        prompts = [self.prompts[i] for i in idx]
        tok = self.tokenizer
        with autocast_context(self.device, self.config.bf16_autocast):
            answers = sample_completions(
                self.policy.lm, prompts, n, self.config, tok.pad_token_id, tok.eos_token_id
            )
        texts = tok.batch_decode(answers, skip_special_tokens=True)
        rows = [self.rows[i] for i in idx for _ in range(n)]
        scores = torch.tensor(self.reward_fn(texts, rows), dtype=torch.float32)
        ids, mask = pack_rollouts([p for p in prompts for _ in range(n)], answers, tok.pad_token_id)
        return {
            "input_ids": ids.to(self.device),
            "mask": mask.to(self.device),
            "scores": scores.to(self.device),
            "texts": texts,
            "rows": rows,
        }

    @torch.no_grad()
    def score_tokens(
        self,
        model: nn.Module,
        ids: torch.Tensor,
        mask: torch.Tensor,
        value_head: nn.Module | None = None,
    ) -> dict[str, torch.Tensor]:
        with autocast_context(self.device, self.config.bf16_autocast):
            return token_outputs(model, ids, mask, self.config.temperature, value_head)

    def optimizer_step(self, loss: torch.Tensor) -> float:
        loss.backward()
        norm = 0.0
        if self.config.max_grad_norm:
            norm = float(
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.max_grad_norm)
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> Path:
        path = self.output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{self.step}"
        state = {
            "step": self.step,
            "history": self.history,
            "total_steps": self.total_steps,
            "data_hash": self.data_hash,
            "kind": self.kind,
            "extra": self.extra_state,
            "config": self.config.settings(),
        }
        return save_checkpoint(
            path,
            model_state=trainable_state_dict(self.policy),
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.scheduler.state_dict(),
            trainer_state=state,
            rng=[rng_state()],
            keep_last=self.config.keep_checkpoints,
        )

    def resume(self, ckpt_dir: str | Path) -> None:
        state = load_checkpoint(ckpt_dir)
        ts = state["trainer_state"]
        if ts["data_hash"] != self.data_hash:
            raise ValueError("the checkpoint was trained on different data")
        if ts.get("kind") != self.kind:
            raise ValueError(f"the checkpoint is from a {ts.get('kind')} run, not {self.kind}")
        load_trainable_state_dict(self.policy, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"][0])
        self.step, self.history, self.extra_state = ts["step"], ts["history"], ts["extra"]

    # ------------------------------------------------------------------ loop

    def run(
        self, step_fn: Callable[[RolloutRun, int], dict[str, float]], title: str
    ) -> TrainResult:
        started = time.perf_counter()
        last_saved = -1
        while self.step < self.total_steps:
            if self.hooks.cancelled():
                ckpt = str(self.save())
                return self._result("cancelled", None, ckpt, self._summary(started))
            metrics = step_fn(self, self.step)
            self.scheduler.step()
            self.step += 1
            metrics["learning_rate"] = self.scheduler.get_last_lr()[0]
            if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                self.history.append({"step": self.step, **metrics})
                self.hooks.progress(self.step, self.total_steps, metrics)
            if self.config.save_every and self.step % self.config.save_every == 0:
                self.save()
                last_saved = self.step
        ckpt = None
        if self.config.save_every:
            ckpt = str(self.save() if last_saved != self.step else self._ckpt_path())
        metrics = self._summary(started)
        return self._result("completed", str(self._save_model(title, metrics)), ckpt, metrics)

    def _ckpt_path(self) -> Path:
        return self.output_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{self.step}"

    def _summary(self, started: float) -> dict[str, float]:
        last = {k: v for k, v in self.history[-1].items() if k != "step"} if self.history else {}
        return {**last, "train_runtime_s": time.perf_counter() - started}

    def _save_model(self, title: str, metrics: dict[str, float]) -> Path:
        card = {
            "title": title,
            "base_model": str(self.base_model),
            "kind": self.kind,
            "data_hash": self.data_hash,
            "num_rows": len(self.rows),
            "settings": self.config.settings(),
            "metrics": metrics,
        }
        model_dir = self.output_dir / "model"
        save_hf_folder(self.policy.lm, self.tokenizer, model_dir, card)
        if self.policy.value_head is not None:
            head = {
                k: v.detach().cpu().contiguous()
                for k, v in self.policy.value_head.state_dict().items()
            }
            save_file(head, str(self.output_dir / "value_head.safetensors"))
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


# --------------------------------------------------------------------------- PPO


def ppo_minibatch_loss(
    policy: PolicyWithValue, mb: Batch, config: PPOConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped policy loss + `vf_coef` x clipped value loss on one mini-batch of rollouts."""
    out = token_outputs(
        policy.lm, mb["input_ids"], mb["mask"], config.temperature, policy.value_head, True
    )
    mask = mb["mask"]
    pg, clip_frac, approx_kl = rl.ppo_policy_loss(
        out["logp"], mb["logp"], mb["advantages"], mask, config.cliprange
    )
    vf, vf_clip = rl.ppo_value_loss(
        out["values"], mb["values"], mb["returns"], mask, config.cliprange_value
    )
    stats = {
        "policy_loss": pg.detach(),
        "value_loss": vf.detach(),
        "clip_fraction": clip_frac,
        "value_clip_fraction": vf_clip,
        "approx_kl": approx_kl,
        "entropy": masked_mean(out["entropy"], mask),
    }
    return pg + config.vf_coef * vf, stats


def ppo_step(run: RolloutRun, step: int, kl_ctl: Any) -> dict[str, float]:
    """One PPO iteration: rollouts, advantages, then `ppo_epochs` over mini-batches."""
    config: PPOConfig = run.config  # type: ignore[assignment]
    r = run.rollout(step, 1)
    ids, mask = r["input_ids"], r["mask"]
    old = run.score_tokens(run.policy.lm, ids, mask, run.policy.value_head)
    ref = run.score_tokens(run.ref, ids, mask)
    rewards, kl = rl.kl_penalty_rewards(old["logp"], ref["logp"], mask, kl_ctl.value, r["scores"])
    if config.whiten_rewards:
        rewards = rl.whiten(rewards, mask, shift_mean=False)
    advantages, returns = rl.gae(rewards, old["values"], mask, config.gamma, config.lam)
    batch = {
        "input_ids": ids,
        "mask": mask,
        "logp": old["logp"],
        "values": old["values"],
        "advantages": rl.whiten(advantages, mask),
        "returns": returns,
    }
    sums: dict[str, float] = {}
    n_updates = 0
    b = ids.size(0)
    for _ in range(config.ppo_epochs):
        for idx in torch.randperm(b).split(config.batch_size):
            mb = {k: v[idx] for k, v in batch.items()}
            with autocast_context(run.device, config.bf16_autocast):
                loss, stats = ppo_minibatch_loss(run.policy, mb, config)
            stats["grad_norm"] = torch.tensor(run.optimizer_step(loss))
            stats["loss"] = loss.detach()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n_updates += 1
    seq_kl = kl.sum(1).mean().item()
    metrics = {k: v / n_updates for k, v in sums.items()}
    metrics.update(
        reward=r["scores"].mean().item(),
        kl=seq_kl,
        non_score_reward=-kl_ctl.value * seq_kl,
        kl_coef=kl_ctl.value,
        completion_length=mask.sum(1).float().mean().item(),
    )
    kl_ctl.update(seq_kl, b)
    run.extra_state["kl_coef"] = kl_ctl.value
    return metrics


def train_ppo(
    config: PPOConfig,
    rows: Sequence[Row],
    base_model: str | Path,
    output_dir: str | Path,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    resume_from: str | Path | None = None,
) -> TrainResult:
    """Train a policy with PPO on prompts (`prompt` or `messages` rows; `answer`/`tests` for
    verifiers). The reference is the frozen base model."""
    hooks = TrainerHooks(on_progress, should_cancel)
    run = RolloutRun("ppo", config, rows, base_model, output_dir, hooks, True, True)
    if resume_from:
        run.resume(resume_from)
    kl_coef = run.extra_state.get("kl_coef", config.kl_coef)
    kl_ctl: Any = (
        rl.AdaptiveKLController(kl_coef, config.kl_target, config.kl_horizon)
        if config.kl_target
        else rl.FixedKLController(kl_coef)
    )
    title = f"PPO tuning of {Path(base_model).name}"
    return run.run(lambda r, s: ppo_step(r, s, kl_ctl), title)
