"""Shared helpers of the training engine: devices, loading, log-probs, hooks, saving, hashing.

Everything here is plain PyTorch/transformers so that every trainer (SFT, reward, DPO family,
PPO/GRPO) loads, scores and saves models the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ProgressFn = Callable[[int, int, dict[str, float]], None]
CancelFn = Callable[[], bool]
# A phase before the steps (name, done, total): DPO's reference pass, in batches; a total of 0
# says the phase had nothing to compute (its result was cached).
PhaseFn = Callable[[str, int, int], None]


@dataclass
class TrainerHooks:
    """How a trainer talks to its caller: progress reports and a cancellation check."""

    on_progress: ProgressFn | None = None
    should_cancel: CancelFn | None = None
    on_phase: PhaseFn | None = None

    def phase(self, name: str, done: int, total: int) -> None:
        if self.on_phase is not None:
            self.on_phase(name, done, total)

    def progress(self, step: int, total: int, metrics: dict[str, float]) -> None:
        if self.on_progress is not None:
            self.on_progress(step, total, metrics)

    def cancelled(self) -> bool:
        return bool(self.should_cancel and self.should_cancel())


@dataclass
class TrainResult:
    """What every trainer returns.

    `status` is "completed" or "cancelled"; a cancelled run leaves `model_dir` empty and names the
    checkpoint to pass back as `resume_from`.
    """

    status: str
    model_dir: str | None
    checkpoint_dir: str | None
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    total_steps: int = 0
    data_hash: str = ""


# --------------------------------------------------------------------------- runtime


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def configure_threads(n: int | None = 1) -> None:
    """Pin torch to `n` intra-op threads (None leaves torch's default).

    On a shared CPU, two threads per worker collapse throughput when the other core is busy, so
    one thread per worker is the default.
    """
    if n is None:
        return
    torch.set_num_threads(n)
    # Inter-op threads can only be set before the first parallel region runs.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(n)


def pick_device(preferred: str | None = None) -> torch.device:
    """`preferred` ("cpu", "cuda", "cuda:1") wins; otherwise CUDA when present, else CPU."""
    if preferred and preferred != "auto":
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_context(
    device: torch.device, enabled: bool = True
) -> contextlib.AbstractContextManager:
    """bf16 autocast on GPU; full fp32 on CPU, where bf16 is slower and less exact."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    return {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }[dtype]


# --------------------------------------------------------------------------- loading


def _split_gguf(path: str | Path) -> tuple[str, str | None]:
    """A `.gguf` file loads from its folder with `gguf_file=` set to its name."""
    p = Path(path)
    if p.suffix == ".gguf":
        return str(p.parent), p.name
    return str(p), None


def load_tokenizer(path: str | Path, gguf_file: str | None = None) -> Any:
    """Tokenizer with a pad token (the EOS token when the model has none) padding on the right."""
    from transformers import AutoTokenizer

    folder, found = _split_gguf(path)
    kwargs = {"gguf_file": gguf_file or found} if (gguf_file or found) else {}
    tok = AutoTokenizer.from_pretrained(folder, **kwargs)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def _from_pretrained(
    auto_cls: Any, path: str | Path, dtype: Any, gguf_file: str | None, **kwargs: Any
) -> Any:
    folder, found = _split_gguf(path)
    gguf = gguf_file or found
    if gguf:
        from transformers import GgufConfig

        # Without dequantize=True a GGUF model can be neither trained nor saved.
        kwargs.update(gguf_file=gguf, quantization_config=GgufConfig(dequantize=True))
    dt = resolve_dtype(dtype)
    if dt is not None:
        kwargs["dtype"] = dt
    return auto_cls.from_pretrained(folder, **kwargs)


def load_causal_lm(
    path: str | Path,
    dtype: str | torch.dtype | None = "float32",
    device: torch.device | str | None = None,
    gguf_file: str | None = None,
) -> nn.Module:
    """A causal LM from a Hugging Face folder or a `.gguf` file, in `dtype`, on `device`."""
    from transformers import AutoModelForCausalLM

    model = _from_pretrained(AutoModelForCausalLM, path, dtype, gguf_file)
    return model.to(device) if device is not None else model


def load_reward_model(
    path: str | Path,
    dtype: str | torch.dtype | None = "float32",
    device: torch.device | str | None = None,
    gguf_file: str | None = None,
    pad_token_id: int | None = None,
) -> nn.Module:
    """A base LM with a scalar head (`num_labels=1`); the head is new when `path` is a plain LM."""
    import transformers
    from transformers import AutoModelForSequenceClassification

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialised score head" is expected here
    try:
        model = _from_pretrained(
            AutoModelForSequenceClassification, path, dtype, gguf_file, num_labels=1
        )
    finally:
        transformers.logging.set_verbosity(verbosity)
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return model.to(device) if device is not None else model


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model inside DDP / scorer wrappers (a PEFT model stays a PEFT model)."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "inner") and isinstance(model.inner, nn.Module):
            model = model.inner
        else:
            return model


def hf_model(model: nn.Module) -> nn.Module:
    """The bare transformers model, under DDP, scorer and PEFT wrappers."""
    model = unwrap_model(model)
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


# --------------------------------------------------------------------------- log-probs


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Log-probability of each label under `logits`, in fp32.  # (B, T, V), (B, T) -> (B, T)"""
    logp = logits.float().log_softmax(-1)
    return logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def sequence_logprobs(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of the masked tokens of each sequence, and how many tokens were summed.

    `logits` come from a forward pass on `labels` itself (B, T, V); token t is predicted by
    position t - 1, so the shift happens here. `mask` (B, T) marks the tokens to score
    (completion or assistant tokens). Returns (B,) sums and (B,) counts.
    """
    per_token = token_logprobs(logits[:, :-1], labels[:, 1:])  # (B, T-1)
    m = mask[:, 1:].to(per_token.dtype)
    return (per_token * m).sum(-1), m.sum(-1)


# --------------------------------------------------------------------------- hashing


def hash_rows(rows: Iterable[Any]) -> str:
    """Content hash of training rows (order matters): the same rows give the same hash anywhere."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def hash_model_folder(path: str | Path) -> str:
    """Content hash of a model's weights and config (a folder or a `.gguf` file)."""
    p = Path(path)
    files = (
        [p]
        if p.is_file()
        else sorted(
            f
            for f in p.iterdir()
            if f.suffix in {".safetensors", ".bin", ".gguf", ".json"}
            and not f.name.startswith("tokenizer")
        )
    )
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` where `mask` is set (0 when nothing is).  # (B, T), (B, T) -> ()"""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each next-token distribution, in fp32.  # (..., V) -> (...)"""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
