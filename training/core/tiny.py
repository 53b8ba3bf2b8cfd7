"""Tiny random Llama models and synthetic preference data, for tests and benchmarks.

An epoch of a few thousand pairs takes seconds on one CPU thread, so whole training runs can
be checked without a hub download.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = [
    "<pad>",
    "<unk>",
    "<s>",
    "</s>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
]

# `{% generation %}` marks assistant tokens for tools that read assistant masks from the template.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> "
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }} <|end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }} <|end|>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)

GOOD = ["helpful", "clear", "correct", "kind", "precise", "honest", "useful", "thoughtful"]
BAD = ["rude", "wrong", "vague", "lazy", "confusing", "careless", "sloppy", "unhelpful"]


def word_list(n: int = 400) -> list[str]:
    """A fixed vocabulary of pronounceable words."""
    rng = random.Random(1234)
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < n:
        words.add(
            "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(1, 3)))
        )
    return sorted(words)


def synthetic_pairs(
    n: int, seed: int = 0, max_words: int = 50, conversational: bool = False
) -> list[dict[str, Any]]:
    """Preference pairs whose chosen answers use "good" words and rejected ones "bad" words,
    with varied lengths (so both a reward model and a policy have something to learn)."""
    rng = random.Random(seed)
    words = word_list()
    rows = []
    for _ in range(n):
        prompt = " ".join(rng.choices(words, k=rng.randint(4, max_words // 2)))

        def answer(tone: list[str]) -> str:
            k = rng.randint(3, max_words // 2)
            return " " + " ".join(
                rng.choice(tone) if rng.random() < 0.3 else rng.choice(words) for _ in range(k)
            )

        chosen, rejected = answer(GOOD), answer(BAD)
        if conversational:
            rows.append(
                {
                    "prompt": [{"role": "user", "content": prompt}],
                    "chosen": [{"role": "assistant", "content": chosen.strip()}],
                    "rejected": [{"role": "assistant", "content": rejected.strip()}],
                }
            )
        else:
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def build_tokenizer(corpus_words: list[str] | None = None, vocab_size: int = 512) -> Any:
    """A word-level tokenizer with pad/eos tokens and a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = (corpus_words or word_list()) + GOOD + BAD + ["user", "assistant", "system"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS)
    tok.train_from_iterator([" ".join(words), ". , ? !"], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL_TOKENS[4:],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "right"
    return fast


def build_tiny_model(
    folder: str | Path, seed: int = 0, vocab_size: int = 512, hidden_size: int = 64, layers: int = 2
) -> Path:
    """Save a random tiny Llama and its tokenizer to `folder`; returns the folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer = build_tokenizer(vocab_size=vocab_size)
    config = LlamaConfig(
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=vocab_size,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
