"""Generation backends: local folders, and OpenAI-compatible endpoints including failures."""

import http.server
import threading

import pytest

from arena import backends
from arena.backends import GenerationError, GenerationSettings


def test_validate_messages_accepts_a_multi_turn_conversation():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Name a colour"},
    ]
    assert backends.validate_messages(messages) == messages


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([], "non-empty list"),
        ([{"role": "robot", "content": "x"}], "role must be one of"),
        ([{"role": "user", "content": 3}], "content must be a string"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message"),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            "system message may only come first",
        ),
        ([{"role": "user", "content": "   "}], "empty"),
    ],
)
def test_validate_messages_refuses_malformed_conversations_with_the_reason(messages, reason):
    with pytest.raises(ValueError, match=reason):
        backends.validate_messages(messages)


def test_system_prompt_is_prepended_only_when_the_conversation_has_none():
    user_only = [{"role": "user", "content": "q"}]
    assert backends.with_system_prompt(user_only, "sys")[0] == {"role": "system", "content": "sys"}
    own = [{"role": "system", "content": "mine"}, *user_only]
    assert backends.with_system_prompt(own, "sys") == own


def test_local_model_generates_deterministically_with_greedy_decoding(tiny_model_dir):
    model = backends.LocalModel(tiny_model_dir)
    settings = GenerationSettings(temperature=0.0, max_new_tokens=6)
    messages = [{"role": "user", "content": "what is the capital of france"}]
    first = model.generate(messages, settings)
    second = model.generate(messages, settings)
    assert first == second
    assert 1 <= first.completion_tokens <= 6
    assert first.prompt_tokens > 5


def test_local_model_cache_keeps_the_most_recent_models(tiny_model_dir, tmp_path):
    from tests.support.tiny_model import build_tiny_chat_model

    other = build_tiny_chat_model(tmp_path / "other", seed=1)
    cache = backends.LocalModelCache(size=1)
    first = cache.get(tiny_model_dir)
    assert cache.get(tiny_model_dir) is first
    cache.get(other)
    assert cache.get(tiny_model_dir) is not first  # evicted, loaded again


def test_missing_model_folder_is_a_clear_generation_error(tmp_path):
    with pytest.raises(GenerationError, match="does not exist"):
        backends.LocalModelCache(size=1).get(tmp_path / "nope")


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Answers only once the test lets it (`release`): every call outlives the client's
    timeout however fast or slow the machine is."""

    calls = 0
    release = threading.Event()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        type(self).calls += 1
        type(self).release.wait(timeout=60)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Answers 503 once, then a valid completion."""

    calls = 0

    def do_POST(self):  # noqa: N802
        type(self).calls += 1
        length = int(self.headers["Content-Length"])
        self.rfile.read(length)
        if type(self).calls == 1:
            body, code = b'{"error": {"message": "overloaded"}}', 503
        else:
            body = (
                b'{"choices": [{"message": {"role": "assistant", "content": "hi"}, '
                b'"finish_reason": "stop"}], "usage": {"prompt_tokens": 3, '
                b'"completion_tokens": 1}}'
            )
            code = 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_endpoint_timeout_is_retried_then_reported():
    _SlowHandler.calls = 0
    _SlowHandler.release.clear()
    server = _serve(_SlowHandler)
    try:
        with pytest.raises(
            GenerationError, match=r"failed after 2 attempts: no answer within 0.2 s"
        ):
            backends.openai_chat(
                base_url=f"http://127.0.0.1:{server.server_port}/v1",
                model="m",
                messages=[{"role": "user", "content": "q"}],
                settings=GenerationSettings(),
                timeout_s=0.2,
                max_retries=1,
            )
        assert _SlowHandler.calls == 2
    finally:
        _SlowHandler.release.set()
        server.shutdown()


def test_endpoint_overload_is_retried_and_the_answer_returned():
    _FlakyHandler.calls = 0
    server = _serve(_FlakyHandler)
    try:
        out = backends.openai_chat(
            base_url=f"http://127.0.0.1:{server.server_port}/v1",
            model="m",
            messages=[{"role": "user", "content": "q"}],
            settings=GenerationSettings(),
            max_retries=2,
        )
    finally:
        server.shutdown()
    assert out.text == "hi" and out.completion_tokens == 1
    assert _FlakyHandler.calls == 2


def test_unreachable_endpoint_says_it_could_not_connect():
    with pytest.raises(GenerationError, match="could not connect"):
        backends.openai_chat(
            base_url="http://127.0.0.1:9/v1",
            model="m",
            messages=[{"role": "user", "content": "q"}],
            settings=GenerationSettings(),
            timeout_s=1,
            max_retries=0,
        )
