"""Scoring modules: per-sequence completion log-probs of a causal LM, scalar rewards.

Both read the backbone's hidden states and project only the positions that are scored, so the
full (B, T, V) logits are never built. A batch comes in one of two layouts:

- plain: right-padded rows and a `completion_mask`. No attention mask is passed: under causal
  attention a real token never sees the padding after it, and the mask-free path is the fast one.
- packed pairs: one row per preference pair holding prompt, chosen and rejected tokens
  (`segments` 0/1/2, -1 for padding). A 4D mask stops rejected tokens from seeing the chosen
  ones and `position_ids` restart the rejected answer right after the prompt, so each answer is
  scored exactly as if alone, while the prompt goes through the model once instead of twice.

Wrap these modules (not the LM inside them) in DDP/FSDP so that their hooks run on each call.
"""

from __future__ import annotations

import torch
from torch import nn

from training.core.common import hf_model, token_logprobs


def supports_packing(model: nn.Module) -> bool:
    """Packed pairs need an attention implementation that takes a custom 4D mask and no
    sliding window (which a custom mask would silently override)."""
    cfg = hf_model(model).config
    if getattr(cfg, "_attn_implementation", None) not in {"sdpa", "eager"}:
        return False
    return not (getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True))


def packed_attention_mask(
    segments: torch.Tensor, implementation: str, dtype: torch.dtype
) -> torch.Tensor:
    """Causal mask without chosen -> rejected visibility.  # (B, T) -> (B, 1, T, T)

    Padding queries attend to themselves only, so no softmax row is empty (an empty row gives
    NaN, which would leak into the gradients even though padding is never scored).
    """
    t = segments.size(1)
    idx = torch.arange(t, device=segments.device)
    causal = idx[:, None] >= idx[None, :]  # (T, T)
    q, k = segments[:, :, None], segments[:, None, :]  # (B, T, 1), (B, 1, T)
    allowed = causal & (k >= 0) & (q >= 0) & ~((q == 2) & (k == 1))
    allowed |= torch.eye(t, dtype=torch.bool, device=segments.device)
    allowed = allowed[:, None]
    if implementation == "sdpa":
        return allowed
    zero = torch.zeros((), dtype=dtype, device=segments.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)  # additive mask for eager


def backbone_hidden(
    model: nn.Module,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor | None,
    segments: torch.Tensor | None,
) -> torch.Tensor:
    """Last hidden states of the transformer body.  # (B, T) -> (B, T, H)"""
    base = hf_model(model)
    kwargs = {}
    if segments is not None:
        impl = base.config._attn_implementation
        dtype = next(base.parameters()).dtype
        kwargs = {
            "attention_mask": packed_attention_mask(segments, impl, dtype),
            "position_ids": position_ids,
        }
    return base.base_model(input_ids=input_ids, use_cache=False, **kwargs).last_hidden_state


def _head_is_plain(model: nn.Module) -> bool:
    """True when logits are just `lm_head(hidden)` (no soft-capping or scaling)."""
    cfg = (
        model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    )
    return not any(
        getattr(cfg, k, None) not in (None, 1.0)
        for k in ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier")
    )


def mask_to_index(
    input_ids: torch.Tensor, completion_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Scored positions of the plain layout: token t+1 is predicted at position t."""
    mask = completion_mask[:, 1:].bool()  # (B, T-1)
    rows, src = mask.nonzero(as_tuple=True)
    return {
        "score_row": rows,
        "score_src": src,
        "score_tgt": input_ids[:, 1:][mask],
        "score_seq": rows,
    }


class CompletionScorer(nn.Module):
    """Summed log-probs of the scored tokens of each sequence.

    Returns `logps` and `counts` per sequence (B for the plain layout, 2B for packed pairs:
    chosen then rejected), `token_logps` (N,) in scoring order and, for the plain layout with
    `return_tokens`, `token_logps_2d` (B, T-1) with zeros outside the completion.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(
        self,
        input_ids: torch.Tensor,
        completion_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        score_row: torch.Tensor | None = None,
        score_src: torch.Tensor | None = None,
        score_tgt: torch.Tensor | None = None,
        score_seq: torch.Tensor | None = None,
        return_tokens: bool = False,
        **_: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        n_seq = input_ids.size(0) * (2 if segments is not None else 1)
        if score_row is None:
            assert completion_mask is not None, "pass a completion_mask or scored positions"
            idx = mask_to_index(input_ids, completion_mask)
            score_row, score_src = idx["score_row"], idx["score_src"]
            score_tgt, score_seq = idx["score_tgt"], idx["score_seq"]
        tok = self._token_logps(input_ids, position_ids, segments, score_row, score_src, score_tgt)
        out = {
            "logps": tok.new_zeros(n_seq).index_add(0, score_seq, tok),  # (n_seq,)
            "counts": torch.bincount(score_seq, minlength=n_seq),
            "token_logps": tok,
        }
        if return_tokens and completion_mask is not None and segments is None:
            mask = completion_mask[:, 1:].bool()
            out["token_logps_2d"] = tok.new_zeros(mask.shape).masked_scatter(mask, tok)
        return out

    def _token_logps(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor | None,
        segments: torch.Tensor | None,
        row: torch.Tensor,
        src: torch.Tensor,
        tgt: torch.Tensor,
    ) -> torch.Tensor:
        """Log-prob of each scored token.  # -> (N,)"""
        base = hf_model(self.inner)
        if _head_is_plain(base):
            hidden = backbone_hidden(self.inner, input_ids, position_ids, segments)  # (B, T, H)
            logits = base.get_output_embeddings()(hidden[row, src])  # (N, V)
            return logits.float().log_softmax(-1).gather(-1, tgt[:, None]).squeeze(-1)
        # Scaled or soft-capped heads: the model's own forward builds the logits.
        mask = None
        if segments is not None:
            dtype = next(base.parameters()).dtype
            mask = packed_attention_mask(segments, base.config._attn_implementation, dtype)
        logits = self.inner(
            input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False
        ).logits  # (B, T, V)
        return token_logprobs(logits[row, src], tgt)


class RewardScorer(nn.Module):
    """Scalar reward of each sequence, read at its last real token.

    Plain layout: `lengths` (B,) -> (B,). Packed pairs: `read_pos` (2B,) -> (2B,), chosen then
    rejected.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(
        self,
        input_ids: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        read_pos: torch.Tensor | None = None,
        **_: torch.Tensor,
    ) -> torch.Tensor:
        base = hf_model(self.inner)
        if not hasattr(base, "score"):
            raise TypeError(f"{type(base).__name__} has no scalar `score` head")
        rows = torch.arange(input_ids.size(0), device=input_ids.device)
        if read_pos is None:
            assert lengths is not None, "pass lengths or read positions"
            read_pos = lengths - 1
        else:
            rows = rows.repeat(2)
        hidden = backbone_hidden(self.inner, input_ids, position_ids, segments)  # (B, T, H)
        return base.score(hidden[rows, read_pos]).squeeze(-1).float()
