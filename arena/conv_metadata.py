"""Conversation metadata in the layout of the public arena battle files (``conv_metadata``).

FastChat's and LMArena's releases carry, per battle, token counts and markdown counts of each
side's answers; style control reads them. The layout (one flat object per battle):

    {"sum_user_tokens": 12, "sum_assistant_a_tokens": 310, "sum_assistant_b_tokens": 95,
     "context_a_tokens": 12, "context_b_tokens": 12, "turns": 1,
     "header_count_a": {"h1": 0, "h2": 1, "h3": 2, "h4": 0, "h5": 0, "h6": 0},
     "list_count_a": {"ordered": 3, "unordered": 0},
     "bold_count_a": {"**": 4, "__": 0},
     "header_count_b": {...}, "list_count_b": {...}, "bold_count_b": {...}}

Tokens are counted without a tokenizer (words and punctuation marks, as in
``arena.ratings.style_features``), so counts are about proportional to BPE tokens, not equal.
Markdown is counted outside fenced code blocks, answer by answer, and summed over the turns.
``context_<side>_tokens`` counts every message before that side's last answer.

Also reads the style source of a battle file's row (`from_row`, for `arena.battle_files`).
Pure Python (never imports Django).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADERS = {f"h{k}": re.compile(rf"^#{{{k}}}\s", re.MULTILINE) for k in range(1, 7)}
_LISTS = {
    "ordered": re.compile(r"^\s*\d+\.\s", re.MULTILINE),
    "unordered": re.compile(r"^\s*[-*+]\s", re.MULTILINE),
}
_BOLD = {"**": re.compile(r"\*\*[^*\n]+\*\*"), "__": re.compile(r"__[^_\n]+__")}
_GROUPS = (("header_count", _HEADERS), ("list_count", _LISTS), ("bold_count", _BOLD))

# Per side, what a stored battle keeps of the metadata (besides the style totals).
SIDE_KEYS = ("header_count", "list_count", "bold_count", "context_tokens")
SHARED_KEYS = ("sum_user_tokens", "turns")


def tokens(text: str) -> int:
    return len(_TOKEN.findall(text or ""))


def markdown_counts(text: str) -> dict[str, dict[str, int]]:
    """``{"header_count": {"h1".."h6"}, "list_count": {...}, "bold_count": {...}}`` of one
    answer, counted outside fenced code blocks."""
    prose = _CODE_BLOCK.sub("", text or "")
    return {
        group: {name: len(rx.findall(prose)) for name, rx in patterns.items()}
        for group, patterns in _GROUPS
    }


def _side(conversation: Sequence[dict[str, Any]]) -> dict[str, Any]:
    answers = [str(m.get("content") or "") for m in conversation if m.get("role") == "assistant"]
    totals = {group: dict.fromkeys(patterns, 0) for group, patterns in _GROUPS}
    for answer in answers:
        for group, counts in markdown_counts(answer).items():
            for name, count in counts.items():
                totals[group][name] += count
    last = max((k for k, m in enumerate(conversation) if m.get("role") == "assistant"), default=0)
    return {
        "answer_tokens": sum(tokens(a) for a in answers),
        "context_tokens": sum(tokens(str(m.get("content") or "")) for m in conversation[:last]),
        **totals,
    }


def from_conversations(
    conversation_a: Sequence[dict[str, Any]], conversation_b: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The ``conv_metadata`` of a battle from both sides' conversations (lists of
    ``{"role", "content"}``; the user's messages are the same on both sides)."""
    users = [str(m.get("content") or "") for m in conversation_a if m.get("role") == "user"]
    a, b = _side(conversation_a), _side(conversation_b)
    meta: dict[str, Any] = {
        "sum_user_tokens": sum(tokens(u) for u in users),
        "sum_assistant_a_tokens": a["answer_tokens"],
        "sum_assistant_b_tokens": b["answer_tokens"],
        "context_a_tokens": a["context_tokens"],
        "context_b_tokens": b["context_tokens"],
        "turns": len(users),
    }
    for side, counts in (("a", a), ("b", b)):
        for group, _ in _GROUPS:
            meta[f"{group}_{side}"] = counts[group]
    return meta


def style_totals(meta: dict[str, Any], side: str) -> list[int]:
    """(tokens, headers, list items, bold spans) of one side, in ``STYLE_FEATURES`` order.
    Raises KeyError, TypeError, AttributeError or ValueError on an incomplete object."""
    return [
        int(meta[f"sum_assistant_{side}_tokens"]),
        int(sum(meta[f"header_count_{side}"].values())),
        int(sum(meta[f"list_count_{side}"].values())),
        int(sum(meta[f"bold_count_{side}"].values())),
    ]


def split(meta: dict[str, Any], side: str) -> dict[str, Any]:
    """What a stored battle keeps of one side (see :func:`join`)."""
    kept = {key: meta[f"{key}_{side}"] for key in SIDE_KEYS[:3] if f"{key}_{side}" in meta}
    if f"context_{side}_tokens" in meta:
        kept["context_tokens"] = meta[f"context_{side}_tokens"]
    kept.update({key: meta[key] for key in SHARED_KEYS if key in meta})
    return kept


def join(style_a: dict[str, Any], style_b: dict[str, Any]) -> dict[str, Any] | None:
    """The ``conv_metadata`` of a stored battle from its two style records, or None when they
    do not hold the markdown breakdown (battles stored without one)."""
    if not all(isinstance(s, dict) and "header_count" in s for s in (style_a, style_b)):
        return None
    meta: dict[str, Any] = {
        "sum_user_tokens": style_a.get("sum_user_tokens", 0),
        "sum_assistant_a_tokens": style_a.get("length_tokens", 0),
        "sum_assistant_b_tokens": style_b.get("length_tokens", 0),
        "context_a_tokens": style_a.get("context_tokens", 0),
        "context_b_tokens": style_b.get("context_tokens", 0),
        "turns": style_a.get("turns", 1),
    }
    for side, style in (("a", style_a), ("b", style_b)):
        for group, _ in _GROUPS:
            meta[f"{group}_{side}"] = style.get(group, {})
    return meta


# --------------------------------------------------------------------------- battle file rows


def from_row(line: int, row: dict[str, Any]) -> dict[str, Any] | None:
    """A battle file row's ``conv_metadata``: as the file gives it (a JSON object, or its text
    in a CSV cell), else built from the answers' text (``conversation_a``/``_b`` or
    ``response_a``/``_b``); None when the row has no style source. ``line`` is for messages."""
    meta = row.get("conv_metadata")
    if isinstance(meta, str) and meta.strip():
        meta = json_cell(line, "conv_metadata", meta)
    if isinstance(meta, dict):
        return meta
    sides = [_conversation(line, row, side) for side in ("a", "b")]
    if sides[0] is None or sides[1] is None:
        return None
    return from_conversations(sides[0], sides[1])


def totals(line: int, meta: dict[str, Any]) -> tuple[list[int], list[int]]:
    """FastChat's conv_metadata: token sum and dicts of header/list/bold counts per side."""
    try:
        return style_totals(meta, "a"), style_totals(meta, "b")
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"line {line}: conv_metadata is incomplete ({exc!r})") from None


def _conversation(line: int, row: dict[str, Any], side: str) -> list[dict[str, Any]] | None:
    """One side's messages from ``conversation_<side>``, or its answer ``response_<side>``."""
    conversation = row.get(f"conversation_{side}")
    if isinstance(conversation, str) and conversation.strip():
        conversation = json_cell(line, f"conversation_{side}", conversation)
    if isinstance(conversation, list):
        if not all(isinstance(turn, dict) for turn in conversation):
            raise ValueError(f"line {line}: conversation_{side} turns must be objects")
        return conversation
    response = row.get(f"response_{side}")
    return [{"role": "assistant", "content": response}] if isinstance(response, str) else None


def json_cell(line: int, column: str, text: str) -> Any:
    """A JSON cell of a battle file; ValueError naming the line when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {line}: {column} is not valid JSON ({exc.msg})") from None
