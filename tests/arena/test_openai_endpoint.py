"""The platform's own OpenAI-compatible endpoint, and the HTTP backend talking to it for real."""

import pytest
from rest_framework.authtoken.models import Token

from arena import services
from arena.backends import GenerationError


@pytest.fixture
def token(annotator):
    return Token.objects.create(user=annotator).key


@pytest.mark.django_db(transaction=True)
def test_chat_completion_answers_in_openai_format(api_client, tiny_contestant, token, eager_tasks):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.post(
        "/v1/chat/completions",
        {
            "model": "tiny-llama",
            "messages": [{"role": "user", "content": "two plus two"}],
            "max_tokens": 4,
            "temperature": 0,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "tiny-llama"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert 1 <= body["usage"]["completion_tokens"] <= 4
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


@pytest.mark.django_db
def test_chat_completion_refuses_bad_requests_with_openai_errors(
    api_client, tiny_contestant, token
):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    unknown = api_client.post(
        "/v1/chat/completions",
        {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
        format="json",
    )
    assert unknown.status_code == 404
    assert "not served here" in unknown.json()["error"]["message"]
    assert unknown.json()["error"]["code"] == "model_not_found"
    bad_role = api_client.post(
        "/v1/chat/completions",
        {"model": "tiny-llama", "messages": [{"role": "wizard", "content": "x"}]},
        format="json",
    )
    assert bad_role.status_code == 400
    assert bad_role.json()["error"]["type"] == "invalid_request_error"
    too_many_choices = api_client.post(
        "/v1/chat/completions",
        {"model": "tiny-llama", "messages": [{"role": "user", "content": "x"}], "n": 9},
        format="json",
    )
    assert too_many_choices.status_code == 400
    assert too_many_choices.json()["error"]["param"] == "n"


@pytest.mark.django_db
def test_chat_completion_needs_a_token(api_client, tiny_contestant):
    response = api_client.post(
        "/v1/chat/completions",
        {"model": "tiny-llama", "messages": [{"role": "user", "content": "x"}]},
        format="json",
    )
    assert response.status_code in (401, 403)
    assert response.json()["error"]["type"] in ("authentication_error", "permission_error")


@pytest.mark.django_db
def test_models_lists_only_active_local_contestants(api_client, tiny_contestant, token):
    services.contestant_create(
        name="remote",
        display_name="Remote",
        backend="openai",
        endpoint_url="http://127.0.0.1:9/v1",
        endpoint_model="x",
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    ids = [m["id"] for m in api_client.get("/v1/models").json()["data"]]
    assert ids == ["tiny-llama"]


@pytest.mark.django_db(transaction=True)
def test_http_backend_gets_an_answer_from_a_real_server(
    live_server, tiny_contestant, annotator, eager_tasks
):
    token = Token.objects.create(user=annotator).key
    remote = services.contestant_create(
        name="tiny-over-http",
        display_name="Tiny over HTTP",
        backend="openai",
        endpoint_url=f"{live_server.url}/v1",
        endpoint_model="tiny-llama",
        endpoint_api_key=token,
        temperature=0.0,
        max_new_tokens=5,
        max_retries=0,
        request_timeout_s=30,
    )
    messages = [{"role": "user", "content": "write a short poem"}]
    over_http = services.contestant_generate(contestant=remote, messages=messages)
    local = services.contestant_generate(
        contestant=tiny_contestant, messages=messages, overrides={"max_new_tokens": 5}
    )
    assert over_http.text == local.text
    assert over_http.completion_tokens == local.completion_tokens


@pytest.mark.django_db(transaction=True)
def test_http_backend_reports_a_refused_request_clearly(live_server, tiny_contestant):
    remote = services.contestant_create(
        name="no-key",
        display_name="No key",
        backend="openai",
        endpoint_url=f"{live_server.url}/v1",
        endpoint_model="tiny-llama",
        max_retries=0,
    )
    with pytest.raises(GenerationError, match=r"refused the request: HTTP (401|403)"):
        services.contestant_generate(
            contestant=remote, messages=[{"role": "user", "content": "hi"}]
        )
