"""Row builders for each export format, and the Anthropic HH transcript.

Each builder takes plain values (prompt messages, answer texts, provenance dicts) and returns
one row dict whose columns are the ones TRL and `datasets` expect:

* preference: ``prompt``, ``chosen``, ``rejected`` as text ("standard") or as message lists
  ("conversational": the prompt's turns, and one assistant turn each for chosen/rejected);
* kto: ``prompt``, ``completion``, ``label`` (bool, desirable or not);
* sft: ``messages`` (conversational) or ``prompt``/``completion`` (standard);
* hh: ``chosen``/``rejected`` full transcripts with ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` turns;
* arena: ``model_a``, ``model_b``, ``winner``, ``conversation_a``/``conversation_b``,
  ``category``, as public arena battle files write them.

Provenance columns are added by the caller (`PROVENANCE_*` name them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FORMATS = ("preference", "kto", "sft", "hh", "arena")
STYLES = ("standard", "conversational")

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLE_OF = {"Human": "user", "Assistant": "assistant"}
_SPEAKER_OF = {"user": "Human", "assistant": "Assistant"}

Messages = list[dict]


def messages_text(messages: Sequence[dict]) -> str:
    """A prompt as one string for the standard text formats: the user's text for a single turn
    (a system message goes before it), else the HH transcript ending in an assistant cue."""
    if len(messages) == 1 and messages[0].get("role") == "user":  # the common case, quickly
        return messages[0].get("content", "")
    users = [m for m in messages if m.get("role") == "user"]
    if len(users) == 1 and all(m.get("role") in ("system", "user") for m in messages):
        return "\n\n".join(m.get("content", "") for m in messages)
    return hh_render(messages) + ASSISTANT


def assistant(text: str) -> Messages:
    return [{"role": "assistant", "content": text}]


def clean_messages(messages: Sequence[dict]) -> Messages:
    """Only role and content, so that every row has one Arrow struct type."""
    return [
        {"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in messages
    ]


def preference_row(prompt: Sequence[dict], chosen: str, rejected: str, *, style: str) -> dict:
    if style == "conversational":
        return {
            "prompt": clean_messages(prompt),
            "chosen": assistant(chosen),
            "rejected": assistant(rejected),
        }
    return {"prompt": messages_text(prompt), "chosen": chosen, "rejected": rejected}


def kto_row(prompt: Sequence[dict], completion: str, label: bool, *, style: str) -> dict:
    if style == "conversational":
        return {
            "prompt": clean_messages(prompt),
            "completion": assistant(completion),
            "label": label,
        }
    return {"prompt": messages_text(prompt), "completion": completion, "label": label}


def sft_row(prompt: Sequence[dict], completion: str, *, style: str) -> dict:
    if style == "conversational":
        return {"messages": clean_messages(prompt) + assistant(completion)}
    return {"prompt": messages_text(prompt), "completion": completion}


def hh_row(prompt: Sequence[dict], chosen: str, rejected: str) -> dict:
    return {
        "chosen": hh_render(list(prompt) + assistant(chosen)),
        "rejected": hh_render(list(prompt) + assistant(rejected)),
    }


def arena_row(
    *,
    question_id: str,
    model_a: str,
    model_b: str,
    winner: str,
    conversation_a: Messages,
    conversation_b: Messages,
    category: str = "",
    tstamp: float | None = None,
) -> dict:
    return {
        "question_id": question_id,
        "model_a": model_a,
        "model_b": model_b,
        "winner": winner,
        "conversation_a": clean_messages(conversation_a),
        "conversation_b": clean_messages(conversation_b),
        "category": category,
        "anony": True,
        "tstamp": tstamp,
    }


# --------------------------------------------------------------------------- Anthropic HH


def hh_render(messages: Sequence[dict]) -> str:
    """`[{role, content}]` -> `\\n\\nHuman: ...\\n\\nAssistant: ...`. HH has no system turn: a
    system message is folded into the first human turn."""
    out, system = [], ""
    for m in messages:
        role, content = m.get("role"), m.get("content", "")
        if role == "system":
            system = content
            continue
        if role == "user" and system:
            content, system = f"{system}\n\n{content}", ""
        speaker = _SPEAKER_OF.get(role)
        if speaker is None:
            raise ValueError(f"HH transcripts have no {role!r} turns")
        # Always "Speaker: " (with the space, even before an empty answer), as the HH release
        # writes it, so that an imported file exports byte for byte.
        out.append(f"\n\n{speaker}: {content}")
    return "".join(out)


def hh_parse(transcript: str) -> Messages:
    """The inverse of `hh_render`; raises ValueError when the text is not an HH transcript."""
    if not isinstance(transcript, str) or not transcript.startswith(HUMAN):
        raise ValueError("an HH transcript starts with '\\n\\nHuman:'")
    parts = _HH_TURN.split(transcript)  # ["", speaker, text, speaker, text, ...]
    messages = []
    for speaker, text in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": _ROLE_OF[speaker], "content": text.removeprefix(" ")})
    return messages


def hh_split(chosen: str, rejected: str) -> tuple[Messages, str, str]:
    """An HH pair -> (prompt messages, chosen answer, rejected answer). Both transcripts must
    share every turn but their last assistant answer."""
    a, b = hh_parse(chosen), hh_parse(rejected)
    if a[-1]["role"] != "assistant" or b[-1]["role"] != "assistant":
        raise ValueError("both transcripts must end with an Assistant turn")
    if a[:-1] != b[:-1]:
        raise ValueError("chosen and rejected differ before their last Assistant turn")
    return a[:-1], a[-1]["content"], b[-1]["content"]
