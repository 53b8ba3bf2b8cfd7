"""Turning rows in TRL's column names into token ids (batches and tensors: `batching`).

Rows are either standard text (`prompt`/`chosen`/`rejected`/`completion` strings) or
conversational (lists of `{role, content}` messages, rendered with the tokenizer's chat template).
Completions are located the way TRL does it: tokenize the prompt and the prompt + completion and
take the completion to start where the two diverge, so that our token ids match TRL's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Row = dict[str, Any]
Messages = list[dict[str, str]]


@dataclass
class PairExample:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: float = 0.0

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + max(len(self.chosen_ids), len(self.rejected_ids))


@dataclass
class SequenceExample:
    input_ids: list[int]
    loss_mask: list[int]

    @property
    def length(self) -> int:
        return len(self.input_ids)


@dataclass
class UnpairedExample:
    prompt_ids: list[int]
    completion_ids: list[int]
    label: bool

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


# --------------------------------------------------------------------------- rows


def is_conversational(row: Row) -> bool:
    for key in ("messages", "prompt", "chosen", "rejected", "completion"):
        value = row.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict) and "role" in value[0]:
            return True
    return False


def extract_prompt(row: Row) -> Row:
    """Split the shared beginning of `chosen` and `rejected` off as the prompt (as TRL does)."""
    chosen, rejected = row["chosen"], row["rejected"]
    idx = 0
    for idx in range(min(len(chosen), len(rejected))):
        if chosen[idx] != rejected[idx]:
            if chosen[idx - 1] == " ":  # keep the space with the completion
                idx -= 1
            break
    return {**row, "prompt": chosen[:idx], "chosen": chosen[idx:], "rejected": rejected[idx:]}


def unpair_rows(rows: Sequence[Row]) -> list[Row]:
    """Preference pairs as unpaired KTO rows: the chosen answer desirable, the rejected one not."""
    out: list[Row] = []
    for row in rows:
        if "label" in row:
            out.append(row)
            continue
        row = row if "prompt" in row else extract_prompt(row)
        out.append({"prompt": row["prompt"], "completion": row["chosen"], "label": True})
        out.append({"prompt": row["prompt"], "completion": row["rejected"], "label": False})
    return out


# --------------------------------------------------------------------------- tokenisation


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _render(tokenizer: Any, messages: Messages, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def _encode_texts(tokenizer: Any, texts: list[str], chat: bool) -> list[list[int]]:
    """Batch-encode; rendered chat text already holds its special tokens."""
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=not chat)["input_ids"]


def _with_eos(text: str, eos: str) -> str:
    return text if text.endswith(eos) else text + eos


def _prompt_and_full_texts(
    tokenizer: Any, rows: Sequence[Row], keys: Sequence[str], chat: bool
) -> tuple[list[str], dict[str, list[str]]]:
    """Render the prompt alone and prompt + each completion column, for every row."""
    prompts: list[str] = []
    fulls: dict[str, list[str]] = {k: [] for k in keys}
    for row in rows:
        if chat:
            prompts.append(_render(tokenizer, row["prompt"], add_generation_prompt=True))
            for k in keys:
                fulls[k].append(_render(tokenizer, row["prompt"] + row[k]))
        else:
            prompts.append(row["prompt"])
            for k in keys:
                fulls[k].append(row["prompt"] + _with_eos(row[k], tokenizer.eos_token))
    return prompts, fulls


def _split_at_prefix(
    prompt_ids: list[int], fulls: list[list[int]]
) -> tuple[list[int], list[list[int]]]:
    cut = min(common_prefix_length(prompt_ids, f) for f in fulls)
    return prompt_ids[:cut], [f[cut:] for f in fulls]


def _truncate(prompt: list[int], parts: list[list[int]], max_length: int | None) -> list[list[int]]:
    """Keep the start of prompt + completion within `max_length` (TRL's "keep_start")."""
    if max_length is None:
        return parts
    room = max_length - len(prompt)
    return [p[:room] for p in parts]


def tokenize_pairs(
    tokenizer: Any, rows: Sequence[Row], max_length: int | None
) -> list[PairExample]:
    """Preference rows -> prompt/chosen/rejected ids. Rows whose prompt fills `max_length` are
    dropped: no completion token would be left to learn from."""
    rows = [r if "prompt" in r else extract_prompt(r) for r in rows]
    chat = bool(rows) and is_conversational(rows[0])
    prompts, fulls = _prompt_and_full_texts(tokenizer, rows, ("chosen", "rejected"), chat)
    p_ids = _encode_texts(tokenizer, prompts, chat)
    c_ids = _encode_texts(tokenizer, fulls["chosen"], chat)
    r_ids = _encode_texts(tokenizer, fulls["rejected"], chat)
    out: list[PairExample] = []
    for row, p, c, r in zip(rows, p_ids, c_ids, r_ids, strict=True):
        prompt, (chosen, rejected) = _split_at_prefix(p, [c, r])
        if max_length is not None and len(prompt) >= max_length:
            continue
        chosen, rejected = _truncate(prompt, [chosen, rejected], max_length)
        out.append(PairExample(prompt, chosen, rejected, float(row.get("margin", 0.0) or 0.0)))
    _report_dropped("preference", len(rows), len(out))
    return out


def tokenize_unpaired(
    tokenizer: Any, rows: Sequence[Row], max_length: int | None
) -> list[UnpairedExample]:
    """KTO rows (`prompt`, `completion`, `label`); preference pairs are unpaired first."""
    rows = unpair_rows(rows)
    chat = bool(rows) and is_conversational(rows[0])
    prompts, fulls = _prompt_and_full_texts(tokenizer, rows, ("completion",), chat)
    p_ids = _encode_texts(tokenizer, prompts, chat)
    f_ids = _encode_texts(tokenizer, fulls["completion"], chat)
    out: list[UnpairedExample] = []
    for row, p, f in zip(rows, p_ids, f_ids, strict=True):
        prompt, (completion,) = _split_at_prefix(p, [f])
        if max_length is not None and len(prompt) >= max_length:
            continue
        (completion,) = _truncate(prompt, [completion], max_length)
        out.append(UnpairedExample(prompt, completion, bool(row["label"])))
    _report_dropped("unpaired", len(rows), len(out))
    return out


def tokenize_sft(
    tokenizer: Any, rows: Sequence[Row], max_length: int | None
) -> list[SequenceExample]:
    """SFT rows -> ids with a loss mask on completion (or assistant) tokens only.

    `prompt`/`completion` rows learn the completion; `messages` rows learn every assistant turn;
    `text` rows learn every token. Output order follows the rows.
    """
    out: list[SequenceExample | None] = [None] * len(rows)
    pc = [i for i, r in enumerate(rows) if "prompt" in r]
    if pc:
        chat = is_conversational(rows[pc[0]])
        prompts, fulls = _prompt_and_full_texts(
            tokenizer, [rows[i] for i in pc], ("completion",), chat
        )
        for i, p, f in zip(
            pc,
            _encode_texts(tokenizer, prompts, chat),
            _encode_texts(tokenizer, fulls["completion"], chat),
            strict=True,
        ):
            cut = common_prefix_length(p, f)
            out[i] = SequenceExample(f, [0] * cut + [1] * (len(f) - cut))
    for i, row in enumerate(rows):
        if "messages" in row:
            out[i] = _tokenize_messages(tokenizer, row["messages"])
        elif "text" in row and "prompt" not in row:
            ids = tokenizer(_with_eos(row["text"], tokenizer.eos_token))["input_ids"]
            out[i] = SequenceExample(ids, [1] * len(ids))
    found = [e for e in out if e is not None]
    if len(found) < len(rows):
        raise ValueError("SFT rows need `messages`, `prompt`/`completion` or `text`")
    if max_length is not None:
        found = [SequenceExample(e.input_ids[:max_length], e.loss_mask[:max_length]) for e in found]
    kept = [e for e in found if any(e.loss_mask[1:])]
    _report_dropped("SFT", len(found), len(kept))
    return kept


def _tokenize_messages(tokenizer: Any, messages: Messages) -> SequenceExample:
    """Mark each assistant turn's tokens by rendering the conversation up to it, with and
    without the turn; works with any template that renders a conversation prefix-stably."""
    full = tokenizer(_render(tokenizer, messages), add_special_tokens=False)["input_ids"]
    mask = [0] * len(full)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer(
            _render(tokenizer, messages[:i], add_generation_prompt=True), add_special_tokens=False
        )["input_ids"]
        upto = tokenizer(_render(tokenizer, messages[: i + 1]), add_special_tokens=False)[
            "input_ids"
        ]
        if full[: len(upto)] != upto:
            raise ValueError(
                "the chat template does not render conversations prefix-stably; "
                "assistant tokens cannot be located"
            )
        for j in range(common_prefix_length(before, upto), len(upto)):
            mask[j] = 1
    return SequenceExample(full, mask)


def tokenize_reward_pairs(
    tokenizer: Any, rows: Sequence[Row], max_length: int | None
) -> list[PairExample]:
    """Reward-model pairs; the tokens are those of DPO (the prompt kept apart so a pair can be
    packed), and each side's sequence is the prompt followed by that answer."""
    return tokenize_pairs(tokenizer, rows, max_length)


def _report_dropped(kind: str, before: int, after: int) -> None:
    if after < before:
        log.warning(
            "dropped %d of %d %s rows with nothing left to learn after truncation",
            before - after,
            before,
            kind,
        )
