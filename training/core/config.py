"""Run settings shared by every trainer, and what they switch on: LoRA, checkpointing,
the optimiser and the learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


@dataclass
class TrainConfig:
    """Settings shared by every trainer. Sizes are per device; lr defaults follow TRL."""

    learning_rate: float = 1e-5
    num_epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum_steps: int = 1
    max_length: int | None = 1024
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    lr_scheduler: str = "linear"
    max_grad_norm: float | None = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    seed: int = 42
    shuffle: bool = True
    group_by_length: bool = True
    save_every: int | None = None
    keep_checkpoints: int | None = 2
    log_every: int = 1
    device: str = "auto"
    dtype: str = "float32"
    bf16_autocast: bool = True
    num_threads: int | None = 1
    gradient_checkpointing: bool = False
    lora: LoraSettings | None = None
    distributed_strategy: str = "ddp"

    def settings(self) -> dict[str, Any]:
        """Flat settings for the model card and run records."""
        out = {}
        for k, v in asdict(self).items():
            out[k] = v if isinstance(v, int | float | str | bool) or v is None else str(v)
        return out


def apply_lora(model: nn.Module, lora: LoraSettings, task_type: str) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type=task_type,
        modules_to_save=["score"] if task_type == "SEQ_CLS" else None,
    )
    return get_peft_model(model, cfg)


def prepare_model(model: nn.Module, config: TrainConfig, task_type: str = "CAUSAL_LM") -> nn.Module:
    """Training switches: dropout off (as TRL), optional gradient checkpointing and LoRA."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    if config.gradient_checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:  # transformers < 5.23
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if config.lora is not None:
        model = apply_lora(model, config.lora, task_type)
    model.train()
    return model


def lr_lambda(config: TrainConfig, total: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then linear/cosine decay or constant
    (the formulas of transformers' schedulers)."""
    warmup = math.ceil(config.warmup_ratio * total)

    def fn(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        if config.lr_scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if config.lr_scheduler == "constant":
            return 1.0
        return max(0.0, 1 - progress)

    return fn


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; biases and norms get no weight decay, as in transformers."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for _, p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    # The fused kernel does the whole update in one pass (CPU and CUDA); DTensors need foreach.
    fused = not any(type(p).__name__ == "DTensor" for _, p in params)
    return torch.optim.AdamW(
        groups, lr=config.learning_rate, betas=config.adam_betas, eps=config.adam_eps, fused=fused
    )
