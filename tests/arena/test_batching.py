"""Continuous batching of a local model: answers asked for together are written in one forward
pass per token, and each is the answer it would have been alone."""

import threading
import time

import pytest

from arena import backends, batching
from arena.backends import GenerationSettings

PROMPTS = [
    "hello there",
    "a much longer prompt with many words in it, so that the rows need padding " * 3,
    "why",
    "tell me a story about cats",
    "x y z",
    "one two three four five",
]
CAPS = [20, 35, 10, 40, 25, 30]


class _Gate:
    """Wraps a model: counts forward passes and the batch size of each, and holds every pass
    until `open` (so that a test can line requests up while the loop waits)."""

    def __init__(self, model):
        self.model, self.sizes = model, []
        self.entered, self.opened = threading.Event(), threading.Event()

    def __call__(self, **kwargs):
        self.entered.set()
        self.opened.wait(timeout=30)
        self.sizes.append(int(kwargs["input_ids"].shape[0]))
        return self.model(**kwargs)


def _ask(model, prompt: str, settings: GenerationSettings, out: list, i: int) -> None:
    out[i] = model.generate([{"role": "user", "content": prompt}], settings)


def _together(model, settings: list[GenerationSettings], prompts=PROMPTS) -> tuple[list, _Gate]:
    """Ask for every prompt from its own thread while the first one is already being written."""
    gate = _Gate(model.batcher.model)
    model.batcher.model = gate
    out = [None] * len(prompts)
    threads = [
        threading.Thread(target=_ask, args=(model, p, s, out, i))
        for i, (p, s) in enumerate(zip(prompts, settings, strict=True))
    ]
    threads[0].start()
    assert gate.entered.wait(timeout=30)  # the loop is reading the first prompt
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 30
    while len(model.batcher._waiting) < len(prompts) - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.opened.set()
    for t in threads:
        t.join(timeout=60)
    return out, gate


@pytest.fixture
def alone(tiny_model_dir):
    return backends.LocalModel(tiny_model_dir)


@pytest.fixture
def batched(tiny_model_dir):
    return backends.LocalModel(tiny_model_dir, batch_size=8)


def test_answers_written_together_equal_those_written_one_by_one(alone, batched):
    settings = [GenerationSettings(temperature=0.0, max_new_tokens=n) for n in CAPS]
    expected = [
        alone.generate([{"role": "user", "content": p}], s) for p, s in zip(PROMPTS, settings)
    ]
    got, gate = _together(batched, settings)
    assert got == expected
    assert [g.finish_reason for g in got] == ["length"] * len(PROMPTS)
    # The first prompt was read alone, the other five joined it in flight: one pass per token
    # for all of them, not one per token per answer.
    assert gate.sizes[0] == 1 and max(gate.sizes) == len(PROMPTS)
    assert len(gate.sizes) < sum(CAPS) / 2, gate.sizes


def test_a_stop_string_ends_one_answer_while_the_others_go_on(alone, batched):
    probe = alone.generate(
        [{"role": "user", "content": PROMPTS[3]}],
        GenerationSettings(temperature=0.0, max_new_tokens=40),
    )
    stop = probe.text.split()[-1]  # its last word, written before the 40th token
    settings = [GenerationSettings(temperature=0.0, max_new_tokens=n) for n in CAPS]
    settings[3] = GenerationSettings(temperature=0.0, max_new_tokens=40, stop=(stop,))
    expected = alone.generate([{"role": "user", "content": PROMPTS[3]}], settings[3])
    got, _ = _together(batched, settings)
    assert got[3] == expected
    assert got[3].finish_reason == "stop" and stop not in got[3].text
    assert got[3].completion_tokens < 40
    assert [g.completion_tokens for i, g in enumerate(got) if i != 3] == CAPS[:3] + CAPS[4:]


def test_log_probabilities_and_seeded_samples_do_not_depend_on_the_company(alone, batched):
    scored = GenerationSettings(temperature=0.0, max_new_tokens=8, top_logprobs=3)
    sampled = GenerationSettings(temperature=1.0, top_p=0.9, max_new_tokens=20, seed=7)
    messages = [{"role": "user", "content": PROMPTS[0]}]
    expected = alone.generate(messages, scored)
    by_itself = batched.generate(messages, sampled)
    assert batched.generate(messages, sampled) == by_itself  # the seed decides the sample
    settings = [scored, sampled] + [
        GenerationSettings(temperature=0.0, max_new_tokens=n) for n in CAPS[2:]
    ]
    got, _ = _together(batched, settings, prompts=[PROMPTS[0], PROMPTS[0], *PROMPTS[2:]])
    assert got[1] == by_itself
    assert [e["token"] for e in got[0].logprobs] == [e["token"] for e in expected.logprobs]
    for mine, theirs in zip(got[0].logprobs, expected.logprobs, strict=True):
        assert mine["logprob"] == pytest.approx(theirs["logprob"], abs=1e-4)
        assert len(mine["top_logprobs"]) == 3


def test_a_failing_model_fails_every_answer_in_flight_and_the_next_one_works(batched):
    real = batched.batcher.model
    calls = {"n": 0}

    def broken(**kwargs):
        calls["n"] += 1
        raise RuntimeError("out of memory")

    batched.batcher.model = broken
    with pytest.raises(RuntimeError, match="out of memory"):
        batched.generate([{"role": "user", "content": "hi"}], GenerationSettings(temperature=0.0))
    batched.batcher.model = real
    answer = batched.generate(
        [{"role": "user", "content": "hi"}], GenerationSettings(temperature=0.0, max_new_tokens=4)
    )
    assert answer.completion_tokens == 4 and calls["n"] == 1


def test_an_idle_loop_ends_and_the_next_request_starts_another(batched, monkeypatch):
    monkeypatch.setattr(batching, "_IDLE_EXIT_S", 0.05)
    settings = GenerationSettings(temperature=0.0, max_new_tokens=3)
    first = batched.generate([{"role": "user", "content": "hi"}], settings)
    deadline = time.monotonic() + 10
    while batched.batcher._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batched.batcher._thread is None
    assert batched.generate([{"role": "user", "content": "hi"}], settings) == first


def test_threads_asking_for_one_model_at_once_share_one_copy(tmp_path):
    loads = []

    def load(path):
        loads.append(path)
        time.sleep(0.2)
        return object()

    cache = backends.LocalModelCache(2, load=load)
    got = [None] * 4
    threads = [
        threading.Thread(target=lambda i=i: got.__setitem__(i, cache.get(tmp_path)))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and all(g is got[0] for g in got)


def test_nucleus_sampling_keeps_only_the_smallest_set_reaching_top_p():
    import torch

    scores = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    settings = GenerationSettings(temperature=1.0, top_p=0.7)
    generator = torch.Generator().manual_seed(0)
    drawn = {batching._sample(scores, settings, generator) for _ in range(300)}
    assert drawn == {0, 1}
    assert batching._sample(scores, GenerationSettings(temperature=0.0), generator) == 0


@pytest.mark.parametrize("batch_size", [1, 8])
def test_an_answer_whose_asker_stops_reading_ends_at_once(tiny_model_dir, batch_size):
    model = backends.LocalModel(tiny_model_dir, batch_size=batch_size)
    seen = []

    def on_text(text: str) -> bool:
        seen.append(text)
        return len(seen) < 3

    settings = GenerationSettings(temperature=0.0, max_new_tokens=200)
    answer = model.generate([{"role": "user", "content": "hi"}], settings, on_text=on_text)
    assert answer.finish_reason == "cancelled"
    assert answer.completion_tokens < 10 and len(seen) == 3


@pytest.mark.django_db
def test_a_generation_cancelled_while_written_stops_and_keeps_its_words(
    tiny_contestant, settings, monkeypatch
):
    from arena import services
    from arena.models import Generation
    from core.jobs import job_cancel

    settings.GENERATION_PARTIAL_EVERY_S = 1e-9  # every new token
    writer, calls = services._partial_writer, []

    def cancelling_writer(generation):
        write = writer(generation)

        def on_text(text: str) -> bool:
            calls.append(text)
            alive = write(text)
            if text.strip():  # the asker presses Stop once words show
                job_cancel(job=generation)
            return alive

        return on_text

    monkeypatch.setattr(services, "_partial_writer", cancelling_writer)
    generation = services.generation_request(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "hi"}],
        overrides={"temperature": 0, "max_new_tokens": 200},
        enqueue=False,
    )
    services.generation_execute(generation_id=generation.pk)
    row = Generation.objects.get(pk=generation.pk)
    assert row.status == "cancelled" and row.output.strip()
    assert len(calls) < 20, "the model went on writing after the answer was cancelled"
    assert row.completion_tokens is None  # never finished
