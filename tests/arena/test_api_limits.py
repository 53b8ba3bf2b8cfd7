"""Generation parameters are checked where they are asked for, so that no request reaches a
worker (or torch) with a value it cannot use; a contestant with history is never deleted."""

import pytest
from rest_framework.authtoken.models import Token

from arena.api.serializers import SEED_MAX
from arena.models import Generation

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "field,value",
    [
        ("seed", 10**30),
        ("seed", -1),
        ("temperature", 3),
        ("top_p", 1.5),
        ("max_new_tokens", 0),
        ("max_new_tokens", 5000),
    ],
)
def test_a_generation_with_an_out_of_range_parameter_is_refused_and_nothing_stored(
    api_client, annotator, tiny_contestant, field, value
):
    from arena.models import Generation

    api_client.force_authenticate(annotator)
    response = api_client.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": HELLO, field: value},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Generation.objects.count() == 0


def test_a_generation_accepts_the_largest_seed_torch_takes(api_client, annotator, tiny_contestant):
    api_client.force_authenticate(annotator)
    response = api_client.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": HELLO, "seed": SEED_MAX},
        format="json",
    )
    assert response.status_code == 202, response.content
    # The settings are shown to admins only; the stored row keeps the seed asked for.
    assert Generation.objects.get(pk=response.json()["id"]).settings["seed"] == SEED_MAX


def test_a_contestant_configured_for_long_answers_may_be_asked_for_them(
    api_client, annotator, tiny_contestant
):
    tiny_contestant.max_new_tokens = 6000
    tiny_contestant.save(update_fields=["max_new_tokens"])
    api_client.force_authenticate(annotator)
    response = api_client.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": HELLO, "max_new_tokens": 5000},
        format="json",
    )
    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    "field,value",
    [("seed", 10**30), ("seed", -5), ("temperature", -1), ("max_tokens", 5000)],
)
def test_chat_completion_refuses_an_out_of_range_parameter_naming_it(
    api_client, annotator, tiny_contestant, field, value
):
    token = Token.objects.create(user=annotator).key
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.post(
        "/v1/chat/completions",
        {"model": "tiny-llama", "messages": HELLO, field: value},
        format="json",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field
    assert field in error["message"]


@pytest.mark.parametrize("field,value", [("seed", 10**30), ("temperature", 50)])
def test_best_of_n_refuses_an_out_of_range_parameter(
    api_client, researcher, judge, tiny_contestant, field, value
):
    api_client.force_authenticate(researcher)
    response = api_client.post(
        f"/api/training/judges/{judge.id}/best-of-n/",
        {"contestant": "tiny-llama", "prompt": "hi", field: value},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_deleting_a_contestant_with_history_is_refused_with_a_reason(
    api_client, admin_user, annotator, tiny_contestant
):
    from arena import services
    from arena.models import Contestant

    services.generation_request(contestant=tiny_contestant, messages=HELLO, user=annotator)
    api_client.force_authenticate(admin_user)
    response = api_client.delete("/api/contestants/tiny-llama/")
    assert response.status_code == 409, response.content
    assert "deactivate" in response.json()["detail"]
    assert "generations" in response.json()["detail"]
    assert Contestant.objects.filter(name="tiny-llama").exists()


def test_deleting_a_contestant_without_history_removes_it(api_client, admin_user, tiny_contestant):
    from arena.models import Contestant

    api_client.force_authenticate(admin_user)
    response = api_client.delete("/api/contestants/tiny-llama/")
    assert response.status_code == 204
    assert not Contestant.objects.filter(name="tiny-llama").exists()
