"""The LLM judge's prompt templates (versioned; the version is stored on every judgment) and
its call to an OpenAI-compatible endpoint.

The template follows AlpacaEval 2.0's weighted classifier: the judge sees the instruction and
two answers labelled `m` (first shown) and `M` (second shown) and answers with one identifier.
With logprobs, the preference is the probability mass of `M` against `m` among the first
token's alternatives (AlpacaEval's weighted annotator); without, the first character decides.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import requests

SYSTEM_V1 = (
    "You are a highly efficient assistant, who evaluates and selects the best large language "
    "model (LLMs) based on the quality of their responses to a given instruction. This process "
    "will be used to create a leaderboard reflecting the most accurate and human-preferred "
    "answers."
)
USER_V1 = '''I require a leaderboard for various large language models. I'll provide you with \
prompts given to these models and their corresponding outputs. Your task is to assess these \
responses, and select the model that produces the best output from a human perspective.

## Instruction

{{
    "instruction": """{instruction}""",
}}

## Model Outputs

Here are the unordered outputs from the models. Each output is associated with a specific \
model, identified by a unique model identifier.

{{
    {{
        "model_identifier": "m",
        "output": """{output_1}"""
    }},
    {{
        "model_identifier": "M",
        "output": """{output_2}"""
    }}
}}

## Task

Evaluate the models on the basis of the quality and relevance of their results, and select the \
model that generated the best result. Reply with the identifier of the best model. Our \
evaluation will only take into account the first character of your answer, so make sure it \
contains only one of the identifiers and nothing else (no quotes, no spaces, no new lines, ...).
'''

TEMPLATES = {"alpaca_eval_clf_v1": (SYSTEM_V1, USER_V1)}
DEFAULT_TEMPLATE_VERSION = "alpaca_eval_clf_v1"
TOP_LOGPROBS = 5
_RETRYABLE = {429, 500, 502, 503, 504}


class JudgeCallError(RuntimeError):
    """The judge's endpoint did not give a usable answer; the message says why."""


@dataclass(frozen=True)
class Verdict:
    preference: float | None  # 1 = the first answer shown is better, 2 = the second; None: none
    weighted: bool
    raw: str


def judge_messages(*, version: str, instruction: str, output_1: str, output_2: str) -> list:
    system, user = TEMPLATES[version]
    text = user.format(instruction=instruction, output_1=output_1, output_2=output_2)
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def verdict_from_response(body: dict) -> Verdict:
    """Read a chat completion: logprobs first, else the first character of the content."""
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise JudgeCallError(
            f"The judge answered something that is not a chat completion: {body!r:.200}"
        ) from None
    mass = {"m": 0.0, "M": 0.0}
    tokens = ((choice.get("logprobs") or {}).get("content") or [{}])[0].get("top_logprobs") or []
    for alt in tokens:
        token = str(alt.get("token", "")).strip()
        if token in mass and isinstance(alt.get("logprob"), int | float):
            mass[token] += math.exp(alt["logprob"])
    if mass["m"] + mass["M"] > 0:
        return Verdict(1.0 + mass["M"] / (mass["m"] + mass["M"]), True, content)
    first = content.strip()[:1]
    preference = {"m": 1.0, "M": 2.0}.get(first)
    return Verdict(preference, False, content)


def llm_judge_call(
    *, judge, version: str, instruction: str, output_1: str, output_2: str
) -> Verdict:
    """One judgment from `judge` (an `openai` contestant): greedy, one token, logprobs asked
    for (endpoints that do not give them answer without). Retries timeouts, connection errors,
    429 and 5xx with back-off, as the arena's OpenAI-compatible backend does."""
    url = judge.endpoint_url.rstrip("/") + "/chat/completions"
    payload = {
        "model": judge.endpoint_model,
        "messages": judge_messages(
            version=version, instruction=instruction, output_1=output_1, output_2=output_2
        ),
        "temperature": 0.0,
        "max_tokens": 1,
        "logprobs": True,
        "top_logprobs": TOP_LOGPROBS,
    }
    headers = (
        {"Authorization": f"Bearer {judge.endpoint_api_key}"} if judge.endpoint_api_key else {}
    )
    problem = ""
    for attempt in range(judge.max_retries + 1):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        try:
            response = requests.post(
                url, json=payload, headers=headers, timeout=judge.request_timeout_s
            )
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}"
            continue
        if response.status_code in _RETRYABLE:
            problem = f"HTTP {response.status_code}"
            continue
        if response.status_code >= 400:
            raise JudgeCallError(
                f"The judge {url} refused the request: HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
        try:
            return verdict_from_response(response.json())
        except ValueError:
            raise JudgeCallError(
                f"The judge {url} answered with no JSON: {response.text[:200]!r}"
            ) from None
    raise JudgeCallError(
        f"The judge {url} failed after {judge.max_retries + 1} attempts: {problem}"
    )
