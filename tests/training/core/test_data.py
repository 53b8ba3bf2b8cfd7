"""Tokenisation, masking, batching and collation of training rows."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.training.core.conftest import make_pairs, to_conversational
from training.core.batching import (
    collate_pairs,
    collate_pairs_packed,
    collate_reward_pairs,
    collate_unpaired,
    make_batches,
    pad_right,
)
from training.core.common import load_causal_lm, load_reward_model
from training.core.data import (
    PairExample,
    extract_prompt,
    tokenize_pairs,
    tokenize_sft,
    tokenize_unpaired,
    unpair_rows,
)
from training.core.scoring import CompletionScorer, RewardScorer, supports_packing


def ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_tokenize_pairs_splits_text_rows_at_the_prompt_and_appends_eos(tokenizer: Any) -> None:
    row = {"prompt": "ba ka", "chosen": " helpful kind", "rejected": " rude"}
    (ex,) = tokenize_pairs(tokenizer, [row], max_length=None)
    assert ex.prompt_ids == ids(tokenizer, "ba ka")
    assert ex.chosen_ids == ids(tokenizer, "helpful kind") + [tokenizer.eos_token_id]
    assert ex.rejected_ids == ids(tokenizer, "rude") + [tokenizer.eos_token_id]


def test_tokenize_pairs_renders_conversations_with_the_chat_template(tokenizer: Any) -> None:
    (row,) = to_conversational([{"prompt": "ba", "chosen": " helpful", "rejected": " rude"}])
    (ex,) = tokenize_pairs(tokenizer, [row], max_length=None)
    vocab = tokenizer.get_vocab()
    assert ex.prompt_ids[0] == vocab["<|user|>"] and ex.prompt_ids[-1] == vocab["<|assistant|>"]
    assert ex.chosen_ids == [vocab["helpful"], vocab["<|end|>"]]
    assert ex.rejected_ids == [vocab["rude"], vocab["<|end|>"]]


def test_extract_prompt_takes_the_shared_beginning_of_chosen_and_rejected() -> None:
    row = extract_prompt({"chosen": "The sky is blue.", "rejected": "The sky is green."})
    assert row == {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}


def test_tokenize_pairs_truncates_from_the_end_and_drops_prompt_filling_rows(
    tokenizer: Any,
) -> None:
    rows = [
        {"prompt": "ba ka", "chosen": " helpful kind clear", "rejected": " rude"},
        {"prompt": "ba ka ba ka", "chosen": " helpful", "rejected": " rude"},
    ]
    out = tokenize_pairs(tokenizer, rows, max_length=4)
    assert len(out) == 1
    assert len(out[0].prompt_ids) + len(out[0].chosen_ids) == 4
    assert out[0].chosen_ids == ids(tokenizer, "helpful kind")


def test_tokenize_sft_masks_every_assistant_turn_and_nothing_else(tokenizer: Any) -> None:
    messages = [
        {"role": "user", "content": "ba"},
        {"role": "assistant", "content": "helpful"},
        {"role": "user", "content": "ka"},
        {"role": "assistant", "content": "kind clear"},
    ]
    (ex,) = tokenize_sft(tokenizer, [{"messages": messages}], max_length=None)
    vocab = tokenizer.get_vocab()
    learned = [t for t, m in zip(ex.input_ids, ex.loss_mask, strict=True) if m]
    assert learned == [
        vocab["helpful"],
        vocab["<|end|>"],
        vocab["kind"],
        vocab["clear"],
        vocab["<|end|>"],
    ]


def test_tokenize_sft_learns_only_the_completion_of_prompt_completion_rows(tokenizer: Any) -> None:
    (ex,) = tokenize_sft(tokenizer, [{"prompt": "ba ka", "completion": " kind"}], max_length=None)
    assert ex.loss_mask == [0, 0, 1, 1]
    assert ex.input_ids[-1] == tokenizer.eos_token_id


def test_unpair_rows_turns_each_pair_into_a_desirable_and_an_undesirable_row() -> None:
    rows = unpair_rows([{"prompt": "p", "chosen": " a", "rejected": " b"}])
    assert rows == [
        {"prompt": "p", "completion": " a", "label": True},
        {"prompt": "p", "completion": " b", "label": False},
    ]


def test_make_batches_is_deterministic_covers_every_row_and_groups_lengths() -> None:
    lengths = [(i * 37) % 100 + 1 for i in range(400)]
    a = make_batches(lengths, 8, seed=3, epoch=1)
    assert a == make_batches(lengths, 8, seed=3, epoch=1)
    assert a != make_batches(lengths, 8, seed=3, epoch=2)
    assert sorted(i for b in a for i in b) == list(range(400))
    grouped = sum(max(lengths[i] for i in b) * len(b) for b in a)
    plain = sum(
        max(lengths[i] for i in b) * len(b)
        for b in make_batches(lengths, 8, seed=3, epoch=1, group_by_length=False)
    )
    assert grouped < 0.8 * plain  # padding saved


def test_collate_pairs_puts_chosen_then_rejected_in_one_batch() -> None:
    batch = collate_pairs([PairExample([1, 2], [3], [4, 5]), PairExample([6], [7, 8], [9])], 0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 0], [6, 7, 8, 0], [1, 2, 4, 5], [6, 9, 0, 0]]
    assert batch["completion_mask"].tolist() == [
        [0, 0, 1, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 1],
        [0, 1, 0, 0],
    ]


def test_collate_unpaired_pairs_each_prompt_with_the_previous_completion_for_kl() -> None:
    from training.core.data import UnpairedExample

    batch = collate_unpaired(
        [UnpairedExample([1], [2], True), UnpairedExample([3], [4, 5], False)], 0
    )
    assert batch["input_ids"].tolist() == [[1, 2, 0], [3, 4, 5], [1, 4, 5], [3, 2, 0]]
    assert batch["label"].tolist() == [True, False]


def _examples(tokenizer: Any) -> list[PairExample]:
    out = tokenize_pairs(tokenizer, make_pairs(6, seed=3), max_length=None)
    out.append(PairExample([], [11, 12, 3], [13, 3]))  # empty prompt: first tokens unscored
    out.append(PairExample([5, 6], [14], []))  # empty answer
    return out


def test_packed_pairs_score_exactly_like_separate_sequences(
    tiny_model_dir: Any, tokenizer: Any
) -> None:
    model = load_causal_lm(tiny_model_dir)
    assert supports_packing(model)
    scorer = CompletionScorer(model).eval()
    examples = _examples(tokenizer)
    with torch.no_grad():
        plain = scorer(**collate_pairs(examples, tokenizer.pad_token_id))
        packed = scorer(**collate_pairs_packed(examples, tokenizer.pad_token_id))
    torch.testing.assert_close(packed["logps"], plain["logps"], atol=1e-5, rtol=1e-5)
    assert packed["counts"].tolist() == plain["counts"].tolist()


def test_plain_scoring_matches_a_full_forward_pass(tiny_model_dir: Any, tokenizer: Any) -> None:
    from training.core.common import sequence_logprobs

    model = load_causal_lm(tiny_model_dir).eval()
    batch = collate_pairs(_examples(tokenizer)[:4], tokenizer.pad_token_id)
    with torch.no_grad():
        ours = CompletionScorer(model)(**batch)
        attention = torch.arange(batch["input_ids"].size(1))[None] < batch["lengths"][:, None]
        logits = model(input_ids=batch["input_ids"], attention_mask=attention.long()).logits
    full, counts = sequence_logprobs(logits, batch["input_ids"], batch["completion_mask"])
    torch.testing.assert_close(ours["logps"], full, atol=1e-5, rtol=1e-5)
    assert ours["counts"].tolist() == counts.long().tolist()


def test_packed_reward_pairs_read_the_same_rewards(tiny_model_dir: Any, tokenizer: Any) -> None:
    model = load_reward_model(tiny_model_dir, pad_token_id=tokenizer.pad_token_id).eval()
    examples = _examples(tokenizer)[:7]
    scorer = RewardScorer(model)
    with torch.no_grad():
        plain = scorer(**collate_reward_pairs(examples, tokenizer.pad_token_id))
        packed = scorer(**collate_pairs_packed(examples, tokenizer.pad_token_id))
        seqs = [e.prompt_ids + e.chosen_ids for e in examples[:2]]
        hf = model(input_ids=pad_right(seqs, tokenizer.pad_token_id)).logits.squeeze(-1)
    torch.testing.assert_close(packed, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain[:2], hf, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["pairs", "unpaired"])
def test_tokenisers_keep_rows_that_fit(tokenizer: Any, kind: str) -> None:
    rows = make_pairs(5, seed=9)
    out = (
        tokenize_pairs(tokenizer, rows, 128)
        if kind == "pairs"
        else tokenize_unpaired(tokenizer, rows, 128)
    )
    assert len(out) == (5 if kind == "pairs" else 10)
