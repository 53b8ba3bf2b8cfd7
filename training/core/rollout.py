"""Rollouts for PPO and GRPO: prompts, sampling, packing, scoring and per-token outputs.

A rollout is a batch of prompts, `n` sampled answers to each (prompt-major), the answers'
rewards (a verifier or a reward model) and the rows packed for scoring: right-padded
`input_ids` (B, T) and the `mask` (B, T-1) of positions that predict answer tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from training.core.common import autocast_context, hf_model, token_entropy
from training.core.config import TrainConfig
from training.core.scoring import _head_is_plain, backbone_hidden
from training.core.verifiers import RewardFn, Row, row_prompt


@dataclass
class RolloutConfig(TrainConfig):
    """Settings PPO and GRPO share. `batch_size` is the mini-batch (sequences per optimiser
    step); a step of the run is one batch of rollouts and its updates; `max_steps` counts them.
    `rollout_batch_size` is per process, as every size: under torchrun a step takes
    `rollout_batch_size` prompts on each rank. Set exactly one reward source: `reward_model`
    (a folder) or `verifier` (+ `verifier_args`)."""

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


# --------------------------------------------------------------------------- model


class PolicyWithValue(nn.Module):
    """A causal LM and an optional scalar value head on its last hidden state (named `lm`, not
    `inner`, so that `unwrap_model` keeps the head).

    Training calls go through `forward`, so that the module can be wrapped in DDP; sampling and
    no-grad scoring use `lm` directly."""

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

    def forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0
    ) -> dict[str, torch.Tensor]:
        """`token_outputs` with entropy, and values when there is a value head."""
        return token_outputs(self.lm, input_ids, mask, temperature, self.value_head, entropy=True)


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


@torch.no_grad()
def score_tokens(
    lm: nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    config: RolloutConfig,
    value_head: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """`token_outputs` without gradients (the rollout policy's and the reference's log-probs)."""
    with autocast_context(ids.device, config.bf16_autocast):
        return token_outputs(lm, ids, mask, config.temperature, value_head)


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


def make_rollouts(
    lm: nn.Module,
    tokenizer: Any,
    prompts: list[list[int]],
    rows: list[Row],
    n: int,
    config: RolloutConfig,
    reward_fn: RewardFn,
) -> dict[str, Any]:
    """Sample `n` answers to each prompt with `lm` and score them with `reward_fn`.

    Returns `input_ids` (B, T), `mask` (B, T-1), `scores` (B,) on the model's device, and the
    answer `texts` and their `rows`; B = prompts x n, prompt-major (a prompt's group is
    contiguous).
    """
    device = next(lm.parameters()).device
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    with autocast_context(device, config.bf16_autocast):
        answers = sample_completions(lm, prompts, n, config, pad, eos)
    texts = tokenizer.batch_decode(answers, skip_special_tokens=True)
    rows = [row for row in rows for _ in range(n)]
    scores = torch.tensor(reward_fn(texts, rows), dtype=torch.float32)
    ids, mask = pack_rollouts([p for p in prompts for _ in range(n)], answers, pad)
    return {
        "input_ids": ids.to(device),
        "mask": mask.to(device),
        "scores": scores.to(device),
        "texts": texts,
        "rows": rows,
    }
