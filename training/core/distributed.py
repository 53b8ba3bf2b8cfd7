"""Running the same trainers under `torchrun`: DDP for models that fit, FSDP for larger ones.

Outside `torchrun` (no WORLD_SIZE in the environment) everything here is a no-op, so a trainer
is written once. Under `torchrun` each rank takes every world_size-th batch of the epoch, the
gradients are averaged by DDP (or reduced-scattered by FSDP), logged metrics are averaged over
ranks, and rank 0 alone writes files. PPO and GRPO share out prompts instead of batches
(`rl_loop.py`).

    torchrun --nproc_per_node 2 -m training.core.launch dpo config.json
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from training.core.common import hf_model, pick_device, unwrap_model


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    strategy: str = "ddp"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = "auto", strategy: str = "ddp") -> DistContext:
    """Join the process group `torchrun` describes (gloo on CPU, NCCL on GPU), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=pick_device(device), strategy=strategy)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev, strategy=strategy)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_module(ctx: DistContext, module: nn.Module) -> nn.Module:
    """DDP or FSDP2 around a scorer module; unchanged in a single process."""
    if not ctx.enabled:
        return module
    if ctx.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        # Shard each decoder layer on its own so only one layer is ever gathered at a time.
        for layer in getattr(hf_model(module).base_model, "layers", []):
            fully_shard(layer)
        return fully_shard(module)
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def shard_batches(ctx: DistContext, batches: list[list[int]]) -> list[list[int]]:
    """This rank's share; every rank gets the same count so collectives stay in step."""
    if not ctx.enabled:
        return batches
    usable = len(batches) - len(batches) % ctx.world_size
    return batches[ctx.rank : usable : ctx.world_size]


def mean_over_ranks(ctx: DistContext, values: dict[str, float]) -> dict[str, float]:
    if not ctx.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if ctx.device.type == "cuda":
        t = t.to(ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def sum_over_ranks(ctx: DistContext, t: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of `t` over all ranks (`t` itself in one process); `t` is untouched."""
    if not ctx.enabled:
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t


def any_rank(ctx: DistContext, flag: bool) -> bool:
    """True on every rank when it is true on any: all ranks stop at the same step."""
    if not ctx.enabled:
        return flag
    t = torch.tensor(
        [1.0 if flag else 0.0], device=ctx.device if ctx.device.type == "cuda" else "cpu"
    )
    dist.all_reduce(t)
    return bool(t.item() > 0)


def mean_tensor(t: torch.Tensor) -> torch.Tensor:
    """Mean of a detached tensor over all processes (itself outside torchrun)."""
    if not (dist.is_available() and dist.is_initialized()):
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------- state dicts

_PREFIX = "inner."  # the scorer module's attribute holding the model


def _sharded(ctx: DistContext) -> bool:
    return ctx.enabled and ctx.strategy == "fsdp"


def full_state_dict(ctx: DistContext, wrapped: nn.Module) -> dict[str, torch.Tensor] | None:
    """The whole model's weights on rank 0 (a collective under FSDP); None when not sharded.

    Keys are those of the transformers model, ready for `save_pretrained(state_dict=...)`.
    """
    if not _sharded(ctx):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(wrapped, options=opts)
    return {k.removeprefix(_PREFIX): v for k, v in state.items()}


def checkpoint_states(
    ctx: DistContext, wrapped: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(trainable weights, optimizer state), gathered whole when sharded."""
    if _sharded(ctx):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_sd, optim_sd = get_state_dict(wrapped, optimizer, options=opts)
        trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
        # Keys as in an unsharded run (no scorer prefix), so checkpoints are interchangeable.
        return {k.removeprefix(_PREFIX): v for k, v in model_sd.items() if k in trainable}, optim_sd
    from training.core.checkpoint import trainable_state_dict

    return trainable_state_dict(unwrap_model(wrapped)), optimizer.state_dict()


def load_checkpoint_states(
    ctx: DistContext,
    wrapped: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_sd: dict[str, Any],
    optim_sd: dict[str, Any],
) -> None:
    if _sharded(ctx):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        opts = StateDictOptions(full_state_dict=True, strict=False)
        model_sd = {_PREFIX + k: v for k, v in model_sd.items()}
        set_state_dict(
            wrapped, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd, options=opts
        )
        return
    from training.core.checkpoint import load_trainable_state_dict

    load_trainable_state_dict(unwrap_model(wrapped), model_sd)
    optimizer.load_state_dict(optim_sd)
