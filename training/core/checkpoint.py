"""Saving what a run produces: resumable checkpoints and the final Hugging Face model folder."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from training.core.common import unwrap_model

CHECKPOINT_PREFIX = "checkpoint-"


# --------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- checkpoints


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only what training changes: every parameter in full fine-tuning, the adapters under LoRA."""
    inner = unwrap_model(model)
    return {
        n: p.detach().to("cpu", copy=True).contiguous()
        for n, p in inner.named_parameters()
        if p.requires_grad
    }


def load_trainable_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    inner = unwrap_model(model)
    params = dict(inner.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise KeyError(f"checkpoint holds parameters this model lacks: {unknown[:5]}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))


def save_checkpoint(
    ckpt_dir: str | Path,
    *,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    scheduler_state: dict[str, Any],
    trainer_state: dict[str, Any],
    rng: dict[str, Any] | None = None,
    keep_last: int | None = None,
) -> Path:
    """Write a checkpoint atomically: a half-written folder never looks like a checkpoint."""
    ckpt_dir = Path(ckpt_dir)
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(model_state, str(tmp / "model.safetensors"))
    torch.save(optimizer_state, tmp / "optimizer.pt")
    torch.save(scheduler_state, tmp / "scheduler.pt")
    torch.save(rng if rng is not None else rng_state(), tmp / "rng.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1, default=str))
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    tmp.rename(ckpt_dir)
    if keep_last:
        for old in list_checkpoints(ckpt_dir.parent)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return ckpt_dir


def load_checkpoint(ckpt_dir: str | Path) -> dict[str, Any]:
    """Everything `save_checkpoint` wrote: model, optimizer, scheduler, rng, trainer_state."""
    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / "trainer_state.json").exists():
        raise FileNotFoundError(f"{ckpt_dir} is not a training checkpoint")
    return {
        "model": load_file(str(ckpt_dir / "model.safetensors")),
        # Our own files: optimizer and RNG states hold numpy/python objects.
        "optimizer": torch.load(ckpt_dir / "optimizer.pt", weights_only=False),
        "scheduler": torch.load(ckpt_dir / "scheduler.pt", weights_only=False),
        "rng": torch.load(ckpt_dir / "rng.pt", weights_only=False),
        "trainer_state": json.loads((ckpt_dir / "trainer_state.json").read_text()),
    }


def list_checkpoints(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.exists():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and not p.name.endswith(".tmp")
    ]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(Path(output_dir) / "checkpoints")
    return found[-1] if found else None


# --------------------------------------------------------------------------- model folder


def render_model_card(card: dict[str, Any]) -> str:
    """A README.md that says what the model is, how it was trained, on what, and how it scored."""
    lines = ["---", "library_name: transformers"]
    if card.get("base_model"):
        lines.append(f"base_model: {card['base_model']}")
    lines += ["tags:", f"- {card.get('kind', 'training')}", "---", ""]
    lines += [f"# {card.get('title', 'Trained model')}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    lines += [
        f"- Training method: {card.get('kind', 'unknown')}",
        f"- Base model: {card.get('base_model', 'unknown')}",
        f"- Training data hash (sha256): `{card.get('data_hash', '')}`",
        f"- Training rows: {card.get('num_rows', 'unknown')}",
        "",
    ]
    for section in ("settings", "metrics"):
        values = card.get(section) or {}
        if values:
            lines += [f"## {section.capitalize()}", "", "| name | value |", "| --- | --- |"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(values.items())]
            lines.append("")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")


def save_hf_folder(
    model: nn.Module,
    tokenizer: Any,
    out_dir: str | Path,
    card: dict[str, Any],
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save a folder that `from_pretrained` loads: safetensors, config, tokenizer, README.md.

    LoRA adapters are merged into the base weights first, so the folder is a plain model.
    `state_dict` lets a sharded (FSDP) run pass weights gathered on rank 0.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inner = unwrap_model(model)
    if hasattr(inner, "merge_and_unload"):
        inner = inner.merge_and_unload()
    kwargs = {"state_dict": state_dict} if state_dict is not None else {}
    inner.save_pretrained(out, **kwargs)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    (out / "README.md").write_text(render_model_card(card))
    return out
