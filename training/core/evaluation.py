"""Evaluating models with a reward model as the judge.

- `reward_accuracy`: how often a reward model prefers the chosen answer of held-out pairs.
- `win_rate`: a policy against its parent on the same prompts, judged by a reward model.
- `best_of_n`: sample n answers, keep the one the reward model scores highest.
- `reward_length_correlation`: whether a reward model simply pays for longer answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from training.core.data import Row, tokenize_reward_pairs
from training.core.reward import Prompt, heldout_metrics, pair_rewards, score
from training.core.scoring import RewardScorer


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 1.0
    do_sample: bool = True
    batch_size: int = 8
    seed: int = 0


@dataclass
class BestOfN:
    prompt: Prompt
    best: str
    best_score: float
    candidates: list[str]
    scores: list[float]


def reward_accuracy(
    model: nn.Module,
    tokenizer: Any,
    rows: Sequence[Row],
    max_length: int | None = None,
    batch_size: int = 32,
) -> dict[str, float]:
    """Accuracy, mean margin and loss of a reward model on preference rows."""
    examples = tokenize_reward_pairs(tokenizer, rows, max_length)
    scorer = RewardScorer(model).eval()
    chosen, rejected = pair_rewards(scorer, examples, tokenizer.pad_token_id, batch_size)
    out = heldout_metrics(chosen, rejected)
    return {k.removeprefix("eval/"): v for k, v in out.items()}


def _prompt_text(tokenizer: Any, prompt: Prompt) -> str:
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return prompt


def generate(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    settings: GenerationSettings | None = None,
    num_return_sequences: int = 1,
) -> list[list[str]]:
    """Answers to each prompt (messages use the chat template), `num_return_sequences` each."""
    s = settings or GenerationSettings()
    torch.manual_seed(s.seed)
    # Prompts are left-padded so every answer continues right after its prompt.
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out: list[list[str]] = []
    try:
        for i in range(0, len(prompts), s.batch_size):
            answers = _generate_batch(
                model, tokenizer, prompts[i : i + s.batch_size], s, num_return_sequences
            )
            out += [
                answers[j : j + num_return_sequences]
                for j in range(0, len(answers), num_return_sequences)
            ]
    finally:
        tokenizer.padding_side = side
    return out


@torch.no_grad()
def _generate_batch(
    model: nn.Module, tokenizer: Any, prompts: Sequence[Prompt], s: GenerationSettings, n: int
) -> list[str]:
    chat = isinstance(prompts[0], list)  # rendered chat text already holds its special tokens
    texts = [_prompt_text(tokenizer, p) for p in prompts]
    device = next(model.parameters()).device
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not chat)
    enc = enc.to(device)
    sampling = {"temperature": s.temperature, "top_p": s.top_p} if s.do_sample else {}
    gen = model.generate(
        **enc,
        max_new_tokens=s.max_new_tokens,
        do_sample=s.do_sample,
        num_return_sequences=n,
        pad_token_id=tokenizer.pad_token_id,
        **sampling,
    )
    return tokenizer.batch_decode(gen[:, enc["input_ids"].size(1) :], skip_special_tokens=True)


def _as_answer(prompt: Prompt, text: str) -> str | list[dict[str, str]]:
    return [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text


def win_rate(
    policy: nn.Module,
    parent: nn.Module,
    tokenizer: Any,
    reward_model: nn.Module,
    reward_tokenizer: Any,
    prompts: Sequence[Prompt],
    settings: GenerationSettings | None = None,
    tie_margin: float = 0.0,
) -> dict[str, float]:
    """Share of prompts where the policy's answer out-scores the parent's (ties count half)."""
    ours = [a[0] for a in generate(policy, tokenizer, prompts, settings)]
    theirs = [a[0] for a in generate(parent, tokenizer, prompts, settings)]
    r_ours = score(
        reward_model,
        reward_tokenizer,
        [(p, _as_answer(p, a)) for p, a in zip(prompts, ours, strict=True)],
    )
    r_theirs = score(
        reward_model,
        reward_tokenizer,
        [(p, _as_answer(p, a)) for p, a in zip(prompts, theirs, strict=True)],
    )
    diff = torch.tensor(r_ours) - torch.tensor(r_theirs)
    wins = int((diff > tie_margin).sum())
    losses = int((diff < -tie_margin).sum())
    ties = len(prompts) - wins - losses
    n = max(len(prompts), 1)
    return {
        "win_rate": (wins + 0.5 * ties) / n,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "n": len(prompts),
        "mean_reward_policy": float(torch.tensor(r_ours).mean()),
        "mean_reward_parent": float(torch.tensor(r_theirs).mean()),
    }


def best_of_n(
    policy: nn.Module,
    tokenizer: Any,
    reward_model: nn.Module,
    reward_tokenizer: Any,
    prompts: Sequence[Prompt],
    n: int = 4,
    settings: GenerationSettings | None = None,
) -> list[BestOfN]:
    """For each prompt, n sampled answers and the one the reward model prefers."""
    candidates = generate(policy, tokenizer, prompts, settings, num_return_sequences=n)
    out = []
    for prompt, answers in zip(prompts, candidates, strict=True):
        scores = score(
            reward_model, reward_tokenizer, [(prompt, _as_answer(prompt, a)) for a in answers]
        )
        best = max(range(len(answers)), key=lambda i: scores[i])
        out.append(BestOfN(prompt, answers[best], scores[best], answers, scores))
    return out


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks with ties given their average rank (as Spearman's rho needs)."""
    order = x.argsort()
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(len(x), dtype=x.dtype)
    for v in x.unique():
        same = x == v
        ranks[same] = ranks[same].mean()
    return ranks


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = (x.norm() * y.norm()).item()
    return float((x * y).sum().item() / denom) if denom > 0 else 0.0


def reward_length_correlation(
    reward_model: nn.Module, tokenizer: Any, pairs: Sequence[tuple[Prompt, Any]]
) -> dict[str, float]:
    """Pearson and Spearman correlation between reward and answer length (in tokens)."""
    rewards = torch.tensor(score(reward_model, tokenizer, list(pairs)), dtype=torch.float64)
    lengths = torch.tensor(
        [
            len(
                tokenizer(
                    a if isinstance(a, str) else " ".join(m["content"] for m in a),
                    add_special_tokens=False,
                )["input_ids"]
            )
            for _, a in pairs
        ],
        dtype=torch.float64,
    )
    return {
        "pearson": pearson(rewards, lengths),
        "spearman": pearson(_ranks(rewards), _ranks(lengths)),
        "n": len(pairs),
    }
