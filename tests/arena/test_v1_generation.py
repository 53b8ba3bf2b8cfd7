"""`/v1/chat/completions` queues its answer on the `generate` workers and waits for it; the
official `openai` client talks to the Django app in process (no network server)."""

import httpx2
import openai
import pytest
from rest_framework.authtoken.models import Token

import config.wsgi
from arena import limits, services
from arena.api.openai_stream import stable_prefix
from arena.models import Generation, GenerationStatus

X = [{"role": "user", "content": "x"}]


class _Response:
    """The app's response; once closed, the connection-closing signals are back."""

    def __init__(self, result):
        self.result = result

    def __iter__(self):
        return iter(self.result)

    def close(self):
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            _signals(connect=True)


def _signals(*, connect: bool) -> None:
    from django.core import signals
    from django.db import close_old_connections

    for signal in (signals.request_started, signals.request_finished):
        (signal.connect if connect else signal.disconnect)(close_old_connections)


def _app(environ, start_response):
    """The WSGI app, called in process like Django's test client calls it: the request must
    not close the test's database connection."""
    _signals(connect=False)
    try:
        return _Response(config.wsgi.application(environ, start_response))
    except BaseException:
        _signals(connect=True)
        raise


def _openai(user) -> openai.OpenAI:
    token = Token.objects.create(user=user).key
    http = httpx2.Client(transport=httpx2.WSGITransport(app=_app), base_url="http://testserver")
    return openai.OpenAI(
        api_key=token, base_url="http://testserver/v1", http_client=http, max_retries=0
    )


@pytest.fixture
def no_model_loaded():
    """This process's local-model cache, emptied: the web side must leave it empty."""
    services._local_models.clear()
    yield services._local_models
    services._local_models.clear()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_v1_is_answered_by_a_worker_and_the_web_process_loads_no_model(
    celery_worker, tiny_contestant, annotator, researcher, admin_user, no_model_loaded
):
    client = _openai(annotator)
    completion = client.chat.completions.create(
        model="tiny-llama", messages=X, max_tokens=4, temperature=0
    )
    generation = Generation.objects.get()
    assert generation.status == GenerationStatus.SUCCEEDED, celery_worker.log()
    assert completion.id == f"chatcmpl-{generation.pk}"
    assert completion.choices[0].message.content == generation.output
    assert completion.usage.completion_tokens == generation.completion_tokens >= 1
    assert "arena.tasks.generation_run" in celery_worker.log()
    streamed = client.chat.completions.create(
        model="tiny-llama", messages=X, max_tokens=4, temperature=0, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
        completion.choices[0].message.content
    )
    assert len(no_model_loaded._models) == 0
    # Not part of any battle: its owner and admins see it, nobody else.
    assert generation.requested_by == annotator and generation.battle is None
    from rest_framework.test import APIClient

    for user, seen in ((annotator, True), (admin_user, True), (researcher, False)):
        api = APIClient()
        api.force_authenticate(user)
        ids = [g["id"] for g in api.get("/api/generations/").json()["results"]]
        assert (generation.pk in ids) is seen, user
        one = api.get(f"/api/generations/{generation.pk}/")
        assert one.status_code == (200 if seen else 404)


@pytest.mark.django_db
def test_v1_past_the_longest_wait_is_a_504_and_the_untaken_job_is_cancelled(
    tiny_contestant, annotator, settings, no_model_loaded
):
    """No worker runs here (and nothing is published before commit): the request gives up."""
    settings.V1_GENERATION_WAIT_S = 1
    with pytest.raises(openai.APIStatusError) as caught:
        _openai(annotator).chat.completions.create(model="tiny-llama", messages=X)
    assert caught.value.status_code == 504
    assert caught.value.body["type"] == "timeout"
    assert Generation.objects.get().status == GenerationStatus.CANCELLED
    assert len(no_model_loaded._models) == 0


@pytest.mark.django_db(transaction=True)
def test_stop_strings_end_the_answer(tiny_contestant, annotator, eager_tasks):
    client = _openai(annotator)
    ask = {"model": "tiny-llama", "messages": X, "max_tokens": 8, "temperature": 0}
    full = client.chat.completions.create(**ask).choices[0].message.content
    words = full.split()
    assert len(words) >= 2, full
    stop = " " + words[1]
    expected = full[: full.find(stop)].strip()
    for value in (stop, ["never-said", stop]):
        choice = client.chat.completions.create(**ask, stop=value).choices[0]
        assert choice.message.content == expected
        assert choice.finish_reason == "stop"
    text_format = client.chat.completions.create(**ask, response_format={"type": "text"})
    assert text_format.choices[0].message.content == full


@pytest.mark.django_db(transaction=True)
def test_n_choices_are_answered_each_with_its_own_seed(tiny_contestant, annotator, eager_tasks):
    client = _openai(annotator)
    ask = {"model": "tiny-llama", "messages": X, "max_tokens": 6, "temperature": 1.0, "seed": 7}
    several = client.chat.completions.create(**ask, n=3)
    assert [c.index for c in several.choices] == [0, 1, 2]
    one = client.chat.completions.create(**ask).choices[0].message.content
    assert several.choices[0].message.content == one  # choice 0 samples with the seed itself
    generations = Generation.objects.order_by("id")[:3]
    assert [g.settings["seed"] for g in generations] == [7, 8, 9]
    assert several.usage.completion_tokens == sum(g.completion_tokens for g in generations)
    assert several.usage.prompt_tokens == generations[0].prompt_tokens
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**ask, n=2, stream=True)
    assert caught.value.param == "n"


@pytest.mark.django_db(transaction=True)
def test_logprobs_of_a_local_model_in_openai_shape(tiny_contestant, annotator, eager_tasks):
    client = _openai(annotator)
    ask = {"model": "tiny-llama", "messages": X, "max_tokens": 6, "temperature": 0}
    answer = client.chat.completions.create(**ask, logprobs=True, top_logprobs=3).choices[0]
    content = answer.logprobs.content
    assert content and "".join(t.token for t in content).strip() == answer.message.content
    for token in content:
        alternatives = [t.logprob for t in token.top_logprobs]
        assert len(alternatives) == 3 and alternatives == sorted(alternatives, reverse=True)
        assert token.logprob <= 0 and token.logprob == pytest.approx(alternatives[0])  # greedy
        assert bytes(token.bytes).decode() == token.token
    plain = client.chat.completions.create(**ask).choices[0]
    assert plain.logprobs is None and plain.message.content == answer.message.content
    for bad, field in (({"top_logprobs": 2}, "top_logprobs"), ({"stream": True}, "logprobs")):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(**ask, **({"logprobs": "stream" in bad} | bad))
        assert caught.value.param == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("tool_choice", "auto"),
        ("functions", [{"name": "f"}]),
        ("response_format", {"type": "json_object"}),
        ("logit_bias", {"42": 5}),
        ("presence_penalty", 0.5),
        ("frequency_penalty", -1),
    ],
)
@pytest.mark.django_db
def test_unsupported_fields_are_refused_by_name(tiny_contestant, annotator, field, value):
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(annotator).chat.completions.create(model="tiny-llama", messages=X, **{field: value})
    assert caught.value.param == field
    assert caught.value.body["type"] == "invalid_request_error"
    assert Generation.objects.count() == 0


@pytest.mark.django_db
def test_bad_requests_carry_openai_codes(tiny_contestant, annotator, settings):
    client = _openai(annotator)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="nope", messages=X)
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    with pytest.raises(openai.BadRequestError) as too_many_stops:
        client.chat.completions.create(model="tiny-llama", messages=X, stop=list("abcde"))
    assert too_many_stops.value.param == "stop"
    assert too_many_stops.value.code == "invalid_request_error"
    # The token cap of the contestant holds under either name of the field.
    settings.GENERATION_MAX_NEW_TOKENS = 16
    for field in ("max_tokens", "max_completion_tokens"):
        with pytest.raises(openai.BadRequestError) as over_cap:
            client.chat.completions.create(model="tiny-llama", messages=X, **{field: 17})
        assert over_cap.value.param == field
        assert "16" in over_cap.value.message
    assert Generation.objects.count() == 0


@pytest.mark.django_db
def test_generations_per_minute_hold_across_v1_and_the_api(
    tiny_contestant, annotator, researcher, settings, monkeypatch, api_client
):
    settings.GENERATIONS_PER_MINUTE = 2
    monkeypatch.setattr(limits, "_clock", lambda: 60_000_030.0)  # mid-window
    api_client.force_authenticate(annotator)
    ask = {"contestant": "tiny-llama", "messages": X}
    assert api_client.post("/api/generations/", ask, format="json").status_code == 202
    assert api_client.post("/api/generations/", ask, format="json").status_code == 202
    refused = api_client.post("/api/generations/", ask, format="json")
    assert refused.status_code == 429
    assert "limit 2 per minute" in refused.json()["detail"]
    assert refused["Retry-After"] == "30"
    with pytest.raises(openai.RateLimitError) as caught:
        _openai(annotator).chat.completions.create(model="tiny-llama", messages=X)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.body["type"] == "rate_limit_exceeded"
    assert Generation.objects.count() == 2
    api_client.force_authenticate(researcher)  # another user has an allowance of their own
    assert api_client.post("/api/generations/", ask, format="json").status_code == 202


@pytest.mark.django_db(transaction=True)
def test_openai_backend_sends_stop_upstream(live_server, tiny_contestant, annotator, eager_tasks):
    remote = services.contestant_create(
        name="tiny-over-http",
        display_name="Tiny over HTTP",
        backend="openai",
        endpoint_url=f"{live_server.url}/v1",
        endpoint_model="tiny-llama",
        endpoint_api_key=Token.objects.create(user=annotator).key,
        temperature=0.0,
        max_new_tokens=8,
        max_retries=0,
        request_timeout_s=30,
    )
    plain = services.contestant_generate(contestant=remote, messages=X)
    stop = " " + plain.text.split()[1]
    cut = services.contestant_generate(contestant=remote, messages=X, overrides={"stop": [stop]})
    assert cut.text == plain.text[: plain.text.find(stop)].strip()
    assert cut.finish_reason == "stop"


@pytest.mark.django_db(transaction=True)
def test_streaming_sends_openai_chunks_ending_in_done(tiny_contestant, annotator, eager_tasks):
    client = _openai(annotator)
    ask = {"model": "tiny-llama", "messages": X, "max_tokens": 8, "temperature": 0}
    whole = client.chat.completions.create(**ask).choices[0]
    chunks = list(
        client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True})
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    assert limits._waiting == 0  # the stream's place to wait is given back when it ends
    assert {c.id for c in chunks} == {f"chatcmpl-{Generation.objects.order_by('pk').last().pk}"}
    raw = client._client.post(
        "/v1/chat/completions",
        json={**ask, "stream": True},
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_only_settled_text_is_streamed_while_the_answer_grows():
    assert stable_prefix(" helpful thr", ["three"]) == "helpful"
    assert stable_prefix("helpful three ", []) == "helpful three"
    assert stable_prefix("caf\ufffd", []) == "caf"
    assert stable_prefix("a ##", ["###"]) == "a"
    assert stable_prefix("one two", ["###"]) == "one two"


@pytest.mark.django_db
def test_a_worker_stores_the_partial_answer_as_it_grows(tiny_contestant, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.GENERATION_PARTIAL_EVERY_S = 1e-9  # every new token
    generation = services.generation_request(
        contestant=tiny_contestant, messages=X, overrides={"temperature": 0}
    )
    with CaptureQueriesContext(connection) as queries:
        services.generation_execute(generation_id=generation.pk)
    generation.refresh_from_db()
    partial_writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and '"output"' in q["sql"] and "heartbeat_at" in q["sql"]
    ]
    assert generation.status == GenerationStatus.SUCCEEDED
    assert len(generation.output.split()) >= 2, generation.output
    assert len(partial_writes) >= 2


@pytest.mark.django_db
def test_arena_rate_limits_count_the_client_behind_a_trusted_proxy(rf, settings):
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    from arena.api.views import _api_actor
    from arena.views import _actor

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = rf.post("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.7")
    request.user, request.session = AnonymousUser(), SessionStore()
    assert _api_actor(request).ip == _actor(request).ip == "203.0.113.9"
    spoofed = rf.post("/", REMOTE_ADDR="198.51.100.4", HTTP_X_FORWARDED_FOR="203.0.113.9")
    spoofed.user = None
    assert _api_actor(spoofed).ip == "198.51.100.4"


@pytest.mark.django_db
def test_v1_is_refused_when_all_of_the_process_places_to_wait_are_taken(
    tiny_contestant, annotator, settings
):
    """A waiting call holds a server thread: past V1_WAITING_PER_PROCESS a call is refused
    at once (503, nothing queued), so that the process keeps threads for everything else."""
    settings.V1_WAITING_PER_PROCESS = 1
    assert limits.v1_wait_take()  # a call already waiting in this process
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            _openai(annotator).chat.completions.create(model="tiny-llama", messages=X)
    finally:
        limits.v1_wait_release()
    assert caught.value.status_code == 503 and caught.value.code == "overloaded"
    assert caught.value.response.headers["Retry-After"] == "1"
    assert Generation.objects.count() == 0
    assert limits.v1_wait_take()  # the refused call took no place
    limits.v1_wait_release()
