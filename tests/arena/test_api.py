"""The REST API of the model registry and of generations."""

import pytest
from rest_framework.authtoken.models import Token

from arena.models import Contestant

pytestmark = pytest.mark.django_db

LOCAL = {"name": "m1", "display_name": "Model one", "backend": "local", "model_path": "/models/m1"}


def test_token_is_issued_for_a_password_and_revoked(api_client, annotator):
    bad = api_client.post("/api/auth/token/", {"username": "ann", "password": "wrong"})
    assert bad.status_code == 400 and "Wrong username or password" in bad.json()["detail"]
    key = api_client.post("/api/auth/token/", {"username": "ann", "password": "pw-ann"}).json()[
        "token"
    ]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    me = api_client.get("/api/me/").json()
    assert me == {"username": "ann", "roles": ["annotator"]}
    assert api_client.delete("/api/auth/token/").status_code == 204
    assert not Token.objects.filter(key=key).exists()
    assert api_client.get("/api/me/").status_code == 401


def test_drf_token_keyword_is_accepted_too(api_client, annotator):
    key = Token.objects.create(user=annotator).key
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/me/").status_code == 200


def test_anonymous_visitors_cannot_read_the_registry(api_client):
    assert api_client.get("/api/contestants/").status_code in (401, 403)


def test_annotators_read_but_cannot_change_the_registry(api_client, annotator, tiny_contestant):
    api_client.force_authenticate(annotator)
    listing = api_client.get("/api/contestants/").json()
    assert [c["name"] for c in listing["results"]] == ["tiny-llama"]
    assert "endpoint_api_key" not in listing["results"][0]
    assert api_client.post("/api/contestants/", LOCAL, format="json").status_code == 403


def test_admins_register_a_model_with_its_lineage(api_client, admin_user, tiny_contestant):
    api_client.force_authenticate(admin_user)
    response = api_client.post(
        "/api/contestants/", {**LOCAL, "parent": "tiny-llama"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["parent"] == "tiny-llama"


def test_a_registry_change_is_validated_like_a_registration(
    api_client, admin_user, tiny_contestant, monkeypatch
):
    from arena import services

    updated = []
    update = services.contestant_update
    monkeypatch.setattr(
        services, "contestant_update", lambda **kw: updated.append(kw) or update(**kw)
    )
    api_client.force_authenticate(admin_user)
    url = "/api/contestants/tiny-llama/"
    assert api_client.patch(url, {"temperature": 0.3}, format="json").status_code == 200
    assert updated and Contestant.objects.get(name="tiny-llama").temperature == 0.3
    refused = api_client.patch(url, {"backend": "openai"}, format="json")
    assert refused.status_code == 400 and "endpoint_url" in refused.json()
    assert Contestant.objects.get(name="tiny-llama").backend == "local"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "display_name": "X", "backend": "local"}, "model_path"),
        (
            {"name": "x", "display_name": "X", "backend": "openai", "endpoint_model": "m"},
            "endpoint_url",
        ),
        ({**LOCAL, "temperature": 5}, "temperature"),
        ({**LOCAL, "backend": "telepathy"}, "backend"),
    ],
)
def test_invalid_registrations_are_refused_with_the_field(api_client, admin_user, payload, field):
    api_client.force_authenticate(admin_user)
    response = api_client.post("/api/contestants/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_generation_is_accepted_and_queued(
    api_client, annotator, tiny_contestant, django_capture_on_commit_callbacks
):
    from arena.models import Generation

    api_client.force_authenticate(annotator)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api_client.post(
            "/api/generations/",
            {
                "contestant": "tiny-llama",
                "messages": [{"role": "user", "content": "hi"}],
                "max_new_tokens": 3,
            },
            format="json",
        )
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued"
    # The settings copy the contestant's decoding and system prompt: stored, shown to admins.
    assert "settings" not in response.json()
    stored = Generation.objects.get(pk=response.json()["id"])
    assert stored.settings["max_new_tokens"] == 3
    assert len(callbacks) == 1
    detail = api_client.get(f"/api/generations/{response.json()['id']}/")
    assert detail.status_code == 200


def test_generation_with_a_bad_conversation_is_refused_and_nothing_stored(
    api_client, annotator, tiny_contestant
):
    from arena.models import Generation

    api_client.force_authenticate(annotator)
    response = api_client.post(
        "/api/generations/",
        {"contestant": "tiny-llama", "messages": [{"role": "assistant", "content": "hi"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "last message" in response.json()["messages"][0]
    assert Generation.objects.count() == 0


def test_users_see_only_their_own_generations(api_client, annotator, researcher, tiny_contestant):
    from arena.models import Generation

    theirs = Generation.objects.create(
        contestant=tiny_contestant, messages=[], requested_by=researcher
    )
    api_client.force_authenticate(annotator)
    assert api_client.get(f"/api/generations/{theirs.id}/").status_code == 404
