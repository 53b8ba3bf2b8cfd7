"""Batches of example indices and the collators that turn examples into padded tensors.

Sequences are right-padded to the longest one in the batch (dynamic padding); batches group
similar lengths so that little padding is computed. Preference pairs go through the model in
ONE forward pass: chosen and rejected stacked in one batch, or packed into one row per pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from training.core.data import PairExample, SequenceExample, UnpairedExample

# --------------------------------------------------------------------------- batching


def make_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    group_by_length: bool = True,
    group_size: int = 50,
) -> list[list[int]]:
    """Deterministic batches of example indices for one epoch.

    With `group_by_length`, examples are shuffled, cut into groups of `group_size` batches,
    sorted by length within each group and the resulting batches shuffled: batches hold
    similar lengths (little padding) while the order stays random.
    """
    n = len(lengths)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    span = batch_size * group_size
    batches: list[list[int]] = []
    for start in range(0, n, span):
        group = sorted(order[start : start + span], key=lambda i: -lengths[i])
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    if shuffle:
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in perm]
    return batches


def pair_lengths(examples: Sequence[PairExample], packed: bool) -> list[int]:
    """Row length of each pair in the layout it will be batched in (the grouping key)."""
    if packed:
        return [len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in examples]
    return [e.length for e in examples]


# --------------------------------------------------------------------------- collators


def pad_right(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad to the longest sequence in the batch.  # -> (B, T)"""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def collate_pairs(examples: Sequence[PairExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Chosen rows then rejected rows in ONE batch, so one forward pass scores both.

    Returns input_ids (2B, T), completion_mask (2B, T), lengths (2B,), margin (B,).
    """
    seqs = [e.prompt_ids + e.chosen_ids for e in examples]
    seqs += [e.prompt_ids + e.rejected_ids for e in examples]
    masks = [[0] * len(e.prompt_ids) + [1] * len(e.chosen_ids) for e in examples]
    masks += [[0] * len(e.prompt_ids) + [1] * len(e.rejected_ids) for e in examples]
    return {
        "input_ids": pad_right(seqs, pad_id),
        "completion_mask": pad_right(masks, 0),
        "lengths": torch.tensor([len(s) for s in seqs]),
        "margin": torch.tensor([e.margin for e in examples], dtype=torch.float32),
    }


def collate_sequences(examples: Sequence[SequenceExample], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids (B, T) and loss_mask (B, T) for SFT."""
    return {
        "input_ids": pad_right([e.input_ids for e in examples], pad_id),
        "loss_mask": pad_right([e.loss_mask for e in examples], 0),
    }


def collate_unpaired(
    examples: Sequence[UnpairedExample], pad_id: int, with_kl: bool = True
) -> dict[str, torch.Tensor]:
    """KTO batch: the B matched rows, then (with `with_kl`) B mismatched rows in the same tensor.

    The mismatched row i pairs prompt i with completion i - 1 (cyclically), TRL's estimate of
    the KL term from completions of the same batch.  # input_ids (B or 2B, T), label (B,)
    """
    seqs = [e.prompt_ids + e.completion_ids for e in examples]
    masks = [[0] * len(e.prompt_ids) + [1] * len(e.completion_ids) for e in examples]
    if with_kl:
        shifted = [examples[-1]] + list(examples[:-1])
        seqs += [e.prompt_ids + s.completion_ids for e, s in zip(examples, shifted, strict=True)]
        masks += [
            [0] * len(e.prompt_ids) + [1] * len(s.completion_ids)
            for e, s in zip(examples, shifted, strict=True)
        ]
    return {
        "input_ids": pad_right(seqs, pad_id),
        "completion_mask": pad_right(masks, 0),
        "label": torch.tensor([e.label for e in examples], dtype=torch.bool),
    }


def collate_reward_pairs(examples: Sequence[PairExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Chosen then rejected whole sequences: input_ids (2B, T), lengths (2B,), margin (B,)."""
    seqs = [e.prompt_ids + e.chosen_ids for e in examples]
    seqs += [e.prompt_ids + e.rejected_ids for e in examples]
    return {
        "input_ids": pad_right(seqs, pad_id),
        "lengths": torch.tensor([len(s) for s in seqs]),
        "margin": torch.tensor([e.margin for e in examples], dtype=torch.float32),
    }


def collate_pairs_packed(examples: Sequence[PairExample], pad_id: int) -> dict[str, torch.Tensor]:
    """One row per pair: prompt, chosen, rejected; the prompt is computed once for both answers.

    Rejected tokens take positions right after the prompt and (through the mask built from
    `segments`) never see the chosen tokens. Scored positions are listed explicitly because the
    first rejected token is predicted from the last prompt token, not from its left neighbour.
    Returns input_ids, position_ids, segments (B, T); score_row/src/tgt/seq (N,) with
    seq in [0, 2B) (chosen i -> i, rejected i -> B + i); read_pos (2B,) last token of each side;
    margin (B,).
    """
    b = len(examples)
    width = max(len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in examples)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    pos = torch.zeros((b, width), dtype=torch.long)
    seg = torch.full((b, width), -1, dtype=torch.long)
    score: dict[str, list[int]] = {
        "score_row": [],
        "score_src": [],
        "score_tgt": [],
        "score_seq": [],
    }
    read = [0] * (2 * b)
    for i, e in enumerate(examples):
        p, c, r = len(e.prompt_ids), len(e.chosen_ids), len(e.rejected_ids)
        ids[i, : p + c + r] = torch.as_tensor(e.prompt_ids + e.chosen_ids + e.rejected_ids)
        pos[i, : p + c] = torch.arange(p + c)
        pos[i, p + c : p + c + r] = torch.arange(p, p + r)
        seg[i, :p], seg[i, p : p + c], seg[i, p + c : p + c + r] = 0, 1, 2
        # Predictors: the token before each answer token, except that the first rejected
        # token follows the prompt.
        sides = (
            (list(range(p - 1, p + c - 1)), p, e.chosen_ids),
            ([p - 1, *range(p + c, p + c + r - 1)][:r], p + c, e.rejected_ids),
        )
        for k, (srcs, first, tokens) in enumerate(sides):
            _add_scored(score, i, i + k * b, srcs, tokens)
            read[i + k * b] = first + len(tokens) - 1 if tokens else max(p - 1, 0)
    return {
        "input_ids": ids,
        "position_ids": pos,
        "segments": seg,
        **{k: _long(v) for k, v in score.items()},
        "read_pos": _long(read),
        "margin": torch.tensor([e.margin for e in examples], dtype=torch.float32),
    }


def _add_scored(
    score: dict[str, list[int]], row: int, seq: int, srcs: list[int], tokens: list[int]
) -> None:
    keep = [j for j, s in enumerate(srcs) if s >= 0]  # an empty prompt scores no first token
    score["score_row"] += [row] * len(keep)
    score["score_src"] += [srcs[j] for j in keep]
    score["score_tgt"] += [tokens[j] for j in keep]
    score["score_seq"] += [seq] * len(keep)


def _long(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)
