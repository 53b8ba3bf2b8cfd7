"""Pure checks on battle text: does an answer reveal who wrote it, and what kind of prompt is it;
and what a model's name may be.

No Django here, so that imports of public battle files and the vote path share the same rules.
"""

from __future__ import annotations

import functools
import re

# A model's name: letters, digits and `- _ . :` (public arena files name models like
# `gpt-4.1-2025-04-14` or `amazon.nova-pro-v1:0`), starting with a letter or digit, so that a
# name is one URL path segment and never read as a spreadsheet formula (`=`, `+`, `-`, `@`).
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*\Z"
MODEL_NAME_MAX_LENGTH = 100
MODEL_NAME_RULE = "letters, digits and - _ . : (at most 100), starting with a letter or digit"
_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)


def model_name_ok(name: str) -> bool:
    return len(name) <= MODEL_NAME_MAX_LENGTH and _MODEL_NAME.match(name) is not None


# Common words that a display name may carry ("SmolLM2 · helpful") but that reveal nothing.
_GENERIC = {
    "ai",
    "lab",
    "labs",
    "model",
    "models",
    "local",
    "test",
    "inc",
    "the",
    "and",
    "chat",
    "assistant",
    "instruct",
    "helpful",
    "concise",
    "creative",
    "greedy",
    "base",
    "mini",
}


@functools.lru_cache(maxsize=4096)
def identity_terms(*names: str, organization: str = "") -> frozenset[str]:
    """The words that would reveal a model: its full names and organisation, the family word
    that starts a display name ("SmolLM2 135M · helpful" -> "smollm2", and "smollm" without the
    version), and any token that carries a version number ("llama-3-8b", "135m"). The
    organisation counts only as a whole ("hugging face", not "hugging")."""
    terms: set[str] = {organization.strip().lower()} if organization.strip() else set()
    for name in filter(None, names):
        clean = name.strip().lower()
        terms.add(clean)
        tokens = [t for t in re.split(r"[\s·:/_()]+", clean) if t]
        candidates = [t for t in tokens if re.search(r"\d", t) and re.search(r"[a-z]", t)]
        if tokens and len(tokens[0]) >= 4 and tokens[0] not in _GENERIC:
            candidates.append(tokens[0])
        for token in candidates:
            terms.add(token)
            family = re.sub(r"[\d.\-]+$", "", token)
            if len(family) >= 4 and family not in _GENERIC:
                terms.add(family)
    return frozenset(t for t in terms if len(t) >= 3)


def identity_leaks(text: str, terms: set[str] | frozenset[str]) -> list[str]:
    """The identity terms that occur in `text` as whole words (case-insensitive)."""
    lowered = text.lower()
    if not any(t in lowered for t in terms):  # nearly every answer: no regex at all
        return []
    return sorted(
        t for t in terms if re.search(rf"(?<![\w]){re.escape(t)}(?![\w])", lowered) is not None
    )


_CODE = re.compile(
    r"```|\bdef |\bclass |\bfunction\b|\breturn\b|\bimport\b|\bsql\b|\bpython\b|\bjavascript\b|"
    r"\bbash\b|\bcode\b|\bregex\b|\bcompile|\bbug\b|\bgit\b|\bapi\b|[{};]\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_MATH = re.compile(
    r"\d+\s*[-+*/^=]\s*\d+|\bsolve\b|\bequation|\bderivative|\bintegral|\bprime\b|\bprobability|"
    r"\bsum of\b|\bmultipl|\bpercent|%|\bcalculate|\bmath|\b(plus|minus|times|divided)\b",
    re.IGNORECASE,
)
_CREATIVE = re.compile(
    r"\b(poem|haiku|limerick|story|stories|song|lyrics|slogan|novel|fiction|creative|rewrite)\b",
    re.IGNORECASE,
)


def categorize(messages: list[dict]) -> list[str]:
    """Arena-style categories of a conversation, the first being the primary one:
    coding, math, creative_writing, else general; plus multi_turn and longer_query."""
    user_turns = [m.get("content", "") for m in messages if m.get("role") == "user"]
    text = "\n".join(user_turns)
    found = [
        name
        for name, pattern in (("coding", _CODE), ("math", _MATH), ("creative_writing", _CREATIVE))
        if pattern.search(text)
    ]
    if not found:
        found = ["general"]
    if len(user_turns) > 1:
        found.append("multi_turn")
    if len(text) > 500:
        found.append("longer_query")
    return found
