"""Direct preference optimisation and its relatives, chosen by `loss_type`.

Paired losses: "sigmoid" (DPO, cDPO with label smoothing), "ipo", "hinge", "robust" (rDPO),
"rdpo" (length-regularised), "simpo" and "orpo" (no reference model). Unpaired: "kto", on rows
with `prompt`/`completion`/`label` (preference pairs are unpaired first).

The reference model's log-probs are computed once, before training, with the base model and
cached on disk under a key made of the model weights' hash and the tokenised data's hash, so a
rerun (or a resumed run) skips that pass and no reference model stays in memory.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from training.core import distributed as D
from training.core import losses as L
from training.core.batching import (
    collate_pairs,
    collate_pairs_packed,
    collate_unpaired,
    make_batches,
    pair_lengths,
)
from training.core.common import (
    CancelFn,
    PhaseFn,
    ProgressFn,
    TrainerHooks,
    TrainResult,
    autocast_context,
    hash_model_folder,
    hash_rows,
    load_causal_lm,
    load_tokenizer,
)
from training.core.config import TrainConfig, prepare_model
from training.core.data import PairExample, Row, UnpairedExample, tokenize_pairs, tokenize_unpaired
from training.core.loop import Batch, Task, begin_run, run_training
from training.core.scoring import CompletionScorer, supports_packing

LOSS_TYPES = tuple(L.LOSS_DEFAULTS)
LOSS_NAMES = {
    "sigmoid": "DPO",
    "ipo": "IPO",
    "hinge": "SLiC hinge",
    "robust": "Robust DPO",
    "rdpo": "R-DPO",
    "simpo": "SimPO",
    "orpo": "ORPO",
    "kto": "KTO",
}
_LOSS_FIELDS = (
    "beta",
    "label_smoothing",
    "alpha",
    "gamma",
    "desirable_weight",
    "undesirable_weight",
)
Collate = Callable[[Sequence[Any]], Batch]


@dataclass
class DPOConfig(TrainConfig):
    """Settings of a DPO-family run.

    Hyper-parameters left at `None` take the chosen loss's paper/TRL default
    (`losses.LOSS_DEFAULTS`); `beta` is IPO's tau and ORPO's lambda.
    """

    learning_rate: float = 1e-6
    loss_type: str = "sigmoid"
    beta: float | None = None
    label_smoothing: float | None = None
    alpha: float | None = None
    gamma: float | None = None
    desirable_weight: float | None = None
    undesirable_weight: float | None = None
    ref_batch_size: int | None = None
    cache_dir: str | None = None
    pack_pairs: bool = True

    def loss_params(self) -> dict[str, float]:
        if self.loss_type not in L.LOSS_DEFAULTS:
            raise ValueError(f"unknown loss_type {self.loss_type!r}; one of {LOSS_TYPES}")
        params = dict(L.LOSS_DEFAULTS[self.loss_type])
        for name in params:
            if getattr(self, name, None) is not None:
                params[name] = float(getattr(self, name))
        return params

    def settings(self) -> dict[str, Any]:
        """Flat settings with the loss's resolved hyper-parameters (and none of the others)."""
        out = {k: v for k, v in super().settings().items() if k not in _LOSS_FIELDS}
        return {**out, **self.loss_params()}

    @property
    def needs_reference(self) -> bool:
        return self.loss_type not in L.REFERENCE_FREE


# --------------------------------------------------------------------------- batch losses


def paired_loss(
    loss_type: str,
    params: dict[str, float],
    logps: torch.Tensor,
    counts: torch.Tensor,
    ref: torch.Tensor | None,
) -> tuple[torch.Tensor, L.Stats]:
    """Dispatch to the loss of `loss_type`.  # logps (2B,), counts (2B,), ref (B, 2) or None"""
    pc, pr = logps.chunk(2)
    nc, nr = counts.chunk(2)
    if loss_type == "simpo":
        return L.simpo_loss(pc, pr, nc, nr, **params)
    if loss_type == "orpo":
        return L.orpo_loss(pc, pr, nc, nr, **params)
    assert ref is not None, "this loss needs reference log-probs"
    rc, rr = ref[:, 0], ref[:, 1]
    if loss_type == "sigmoid":
        return L.dpo_loss(pc, pr, rc, rr, **params)
    if loss_type == "robust":
        return L.robust_dpo_loss(pc, pr, rc, rr, **params)
    if loss_type == "hinge":
        return L.hinge_loss(pc, pr, rc, rr, **params)
    if loss_type == "ipo":
        return L.ipo_loss(pc, pr, rc, rr, nc, nr, **params)
    if loss_type == "rdpo":
        return L.rdpo_loss(pc, pr, rc, rr, nc, nr, **params)
    raise ValueError(f"unknown paired loss {loss_type!r}")


def dpo_batch_loss(
    scorer: nn.Module, batch: Batch, loss_type: str, params: dict[str, float]
) -> tuple[torch.Tensor, L.Stats]:
    """One forward pass over chosen + rejected, then the chosen loss."""
    out = scorer(**batch)
    loss, stats = paired_loss(loss_type, params, out["logps"], out["counts"], batch.get("ref"))
    pc, pr = out["logps"].detach().chunk(2)
    stats.update({"logps/chosen": pc.mean(), "logps/rejected": pr.mean()})
    return loss, stats


def kto_batch_loss(
    scorer: nn.Module, batch: Batch, params: dict[str, float]
) -> tuple[torch.Tensor, L.Stats]:
    """Matched rows with gradients; mismatched (KL) rows without, as the KL term is detached."""
    b = batch["label"].numel()
    ids, mask = batch["input_ids"], batch["completion_mask"]
    out = scorer(ids[:b], mask[:b])
    with torch.no_grad():
        kl_logps = scorer(ids[b:], mask[b:])["logps"]
    # KTO's reference point z0: the mismatched rows' mean log-ratio over the whole (global)
    # batch, clamped at zero and detached, as in the paper and TRL.
    kl = D.mean_tensor((kl_logps - batch["ref"][:, 1]).mean().detach()).clamp(min=0)
    return L.kto_loss(out["logps"], batch["ref"][:, 0], batch["label"], kl, **params)


# --------------------------------------------------------------------------- reference pass


def _with_ref(collate: Any, items: Sequence[tuple[Any, torch.Tensor]]) -> Batch:
    batch = collate([e for e, _ in items])
    batch["ref"] = torch.stack([r for _, r in items])
    return batch


def _ref_batches(
    examples: Sequence[PairExample | UnpairedExample],
    config: DPOConfig,
    kto_batches: list[list[int]] | None,
    packed: bool,
) -> list[list[int]]:
    """Batches of the reference pass: sorted by length, so hardly any padding is computed."""
    if kto_batches is not None:  # the KL pairing depends on the batch composition
        return kto_batches
    lengths = pair_lengths(examples, packed)
    order = sorted(range(len(examples)), key=lambda i: lengths[i])
    # Training-sized batches: larger ones ran slower on one CPU thread (cache misses).
    size = config.ref_batch_size or config.batch_size
    return [order[i : i + size] for i in range(0, len(order), size)]


@torch.inference_mode()
def compute_reference_logps(
    model: nn.Module,
    examples: Sequence[Any],
    batches: list[list[int]],
    collate: Collate,
    ctx: D.DistContext,
    autocast: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Reference log-probs of every example.  # -> (N, 2): chosen/rejected, or matched/KL.
    `progress(done, total)` hears of each of this rank's batches.

    Under torchrun each rank scores its share of the batches and the shares are gathered. On
    GPU the pass runs under the same bf16 autocast as training, so that before the first update
    the policy's log-ratios are exactly zero.
    """
    scorer = CompletionScorer(model)
    was_training = model.training
    model.eval()
    found: list[tuple[list[int], torch.Tensor]] = []
    mine = batches[ctx.rank :: ctx.world_size]
    for done, idx in enumerate(mine, start=1):
        batch = collate([examples[i] for i in idx])
        with autocast_context(ctx.device, autocast):
            logps = scorer(**{k: v.to(ctx.device) for k, v in batch.items()})["logps"]  # (2B,)
        found.append((idx, torch.stack(logps.float().cpu().chunk(2), dim=1)))
        if progress is not None:
            progress(done, len(mine))
    model.train(was_training)
    if ctx.enabled:
        found = [x for part in D.gather_objects(ctx, found) for x in part]
    table = torch.full((len(examples), 2), float("nan"))
    for idx, values in found:
        table[idx] = values
    return table


def reference_cache_key(
    base_model: str | Path, examples: Sequence[Any], batches: list[list[int]] | None
) -> str:
    """(model weights, tokenised data[, KTO batch composition]) -> cache key."""
    h = hashlib.sha256(hash_model_folder(base_model).encode())
    for e in examples:
        h.update(json.dumps(e.__dict__, sort_keys=True).encode())
    if batches is not None:
        h.update(json.dumps(batches).encode())
    return h.hexdigest()[:40]


def cached_reference_logps(
    model: nn.Module,
    base_model: str | Path,
    examples: Sequence[Any],
    batches: list[list[int]],
    kto_batches: list[list[int]] | None,
    collate: Collate,
    cache_dir: Path,
    ctx: D.DistContext,
    autocast: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Reference log-probs from the cache, or computed once and cached (by rank 0); `progress`
    hears of each batch computed, or (0, 0) when the cache had them."""
    path = (
        cache_dir
        / f"ref-logps-{reference_cache_key(base_model, examples, kto_batches)}.safetensors"
    )
    if path.exists():
        if progress is not None:
            progress(0, 0)
        return load_file(str(path))["ref"]
    table = compute_reference_logps(model, examples, batches, collate, ctx, autocast, progress)
    if ctx.is_main:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"ref": table.contiguous()}, str(tmp))
        tmp.replace(path)
    D.barrier(ctx)
    return table


# --------------------------------------------------------------------------- trainer


@dataclass
class _Data:
    """Tokenised rows and how they are batched."""

    examples: list[Any]
    collate: Collate
    packed: bool  # each pair packed into one row
    kto_batches: list[list[int]] | None  # KTO's fixed batches (they define the KL pairs)


def _prepare_data(
    config: DPOConfig, tokenizer: Any, rows: Sequence[Row], model: nn.Module
) -> _Data:
    pad = tokenizer.pad_token_id
    if config.loss_type == "kto":
        examples = tokenize_unpaired(tokenizer, rows, config.max_length)
        batches = make_batches(
            [e.length for e in examples],
            config.batch_size,
            seed=config.seed,
            epoch=0,
            shuffle=config.shuffle,
            group_by_length=config.group_by_length,
        )
        return _Data(examples, partial(collate_unpaired, pad_id=pad), False, batches)
    examples = tokenize_pairs(tokenizer, rows, config.max_length)
    if config.pack_pairs and supports_packing(model):
        return _Data(examples, partial(collate_pairs_packed, pad_id=pad), True, None)
    return _Data(examples, partial(collate_pairs, pad_id=pad), False, None)


def _reference_items(
    config: DPOConfig,
    model: nn.Module,
    base_model: str | Path,
    data: _Data,
    output_dir: str | Path,
    ctx: D.DistContext,
    hooks: TrainerHooks,
) -> list[tuple[Any, torch.Tensor]]:
    """Each example with its reference log-probs (zeros for reference-free losses); the pass
    is reported to `hooks` as the phase "reference pass"."""
    if not config.needs_reference:
        return [(e, torch.zeros(2)) for e in data.examples]
    cache = Path(config.cache_dir) if config.cache_dir else Path(output_dir) / "cache"
    batches = _ref_batches(data.examples, config, data.kto_batches, data.packed)
    ref = cached_reference_logps(
        model,
        base_model,
        data.examples,
        batches,
        data.kto_batches,
        data.collate,
        cache,
        ctx,
        config.bf16_autocast,
        lambda done, total: hooks.phase("reference pass", done, total),
    )
    return list(zip(data.examples, ref, strict=True))


def _dpo_task(
    config: DPOConfig,
    model: nn.Module,
    base_model: str | Path,
    items: list[tuple[Any, torch.Tensor]],
    data: _Data,
) -> Task:
    params = config.loss_params()
    if config.loss_type == "kto":
        loss_fn = partial(kto_batch_loss, params=params)
    else:
        loss_fn = partial(dpo_batch_loss, loss_type=config.loss_type, params=params)
    title = f"{LOSS_NAMES[config.loss_type]} preference tuning of {Path(base_model).name}"
    # Pairs are grouped by the length of the row they are batched as.
    lengths = (
        pair_lengths(data.examples, data.packed)
        if data.kto_batches is None
        else [e.length for e in data.examples]
    )
    return Task(
        kind=f"dpo-{config.loss_type}",
        examples=items,
        lengths=lengths,
        collate=partial(_with_ref, data.collate),
        compute_loss=loss_fn,
        scorer=CompletionScorer(model),
        fixed_batches=data.kto_batches,
        card={"title": title, "base_model": str(base_model)},
    )


def train_dpo(
    config: DPOConfig,
    rows: Sequence[Row],
    base_model: str | Path,
    output_dir: str | Path,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    resume_from: str | Path | None = None,
    on_phase: PhaseFn | None = None,
) -> TrainResult:
    """Train a policy from preference pairs (or KTO's unpaired rows) with `config.loss_type`.

    The reference pass runs on the base model before any training switch (LoRA, dropout) is
    applied, and before a checkpoint's weights are loaded on resume.
    """
    config.loss_params()  # fail fast on an unknown loss type
    ctx = begin_run(config)
    tokenizer = load_tokenizer(base_model)
    model = load_causal_lm(base_model, config.dtype, ctx.device)
    data = _prepare_data(config, tokenizer, rows, model)
    hooks = TrainerHooks(on_progress, should_cancel, on_phase)
    started = time.perf_counter()
    items = _reference_items(config, model, base_model, data, output_dir, ctx, hooks)
    ref_seconds = time.perf_counter() - started
    model = prepare_model(model, config)
    task = _dpo_task(config, model, base_model, items, data)
    result = run_training(
        config, task, model, tokenizer, output_dir, hooks, ctx, hash_rows(rows), resume_from
    )
    result.metrics["reference_runtime_s"] = ref_seconds
    return result
