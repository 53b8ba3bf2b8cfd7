"""Fixtures for the training engine: a tiny random Llama and a word-level tokenizer, built here.

Nothing is downloaded; every test runs on CPU with one torch thread.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> "
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }} <|end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }} <|end|>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
GOOD = ["helpful", "clear", "correct", "kind", "precise"]
BAD = ["rude", "wrong", "vague", "lazy", "sloppy"]


def _words(n: int = 300) -> list[str]:
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < n:
        words.add(
            "".join(
                rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(1, 3))
            )
        )
    return sorted(words)


WORDS = _words()


def make_pairs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Standard-text preference rows: chosen answers lean on GOOD words, rejected on BAD ones."""
    rng = random.Random(seed)

    def answer(tone: list[str]) -> str:
        return " " + " ".join(
            rng.choice(tone) if rng.random() < 0.4 else rng.choice(WORDS)
            for _ in range(rng.randint(2, 12))
        )

    return [
        {
            "prompt": " ".join(rng.choices(WORDS, k=rng.randint(2, 10))),
            "chosen": answer(GOOD),
            "rejected": answer(BAD),
        }
        for _ in range(n)
    ]


def to_conversational(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"].strip()}],
            "rejected": [{"role": "assistant", "content": r["rejected"].strip()}],
        }
        for r in rows
    ]


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=512, special_tokens=SPECIAL)
    tok.train_from_iterator(
        [" ".join(WORDS + GOOD + BAD + ["user", "assistant", "system"])], trainer=trainer
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[4:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    import torch
    import transformers

    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Llama (hidden 64, vocab 512) and its tokenizer, saved once per session."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _tokenizer()
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path) -> Any:
    from training.core.common import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="session")
def policy_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with perturbed weights: a policy that differs from its reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-policy")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def pairs() -> list[dict[str, Any]]:
    return make_pairs(64)
