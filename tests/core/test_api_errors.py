"""Every bad request under /api/ and /v1/ gets a 4xx in JSON with a message, never a 500 or
an HTML page, whatever layer refuses it."""

import json

import pytest
from django.test import Client, override_settings

LIST_PATHS = [
    "/api/contestants/",
    "/api/generations/",
    "/api/battles/",
    "/api/training/runs/",
    "/api/training/judges/",
    "/api/annotation/projects/",
    "/api/annotation/datasets/",
]


@pytest.fixture
def admin_api(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("path", LIST_PATHS)
def test_every_list_answers_a_huge_limit_with_a_page(admin_api, path):
    response = admin_api.get(path, {"limit": "99999999999999999999"})
    assert response.status_code == 200, response.content[:300]
    assert response.json()["results"] == []


@pytest.mark.django_db
def test_a_huge_limit_is_clamped_to_the_largest_page(admin_api, tiny_contestant):

    response = admin_api.get("/api/contestants/", {"limit": str(10**20)})
    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert len(response.json()["results"]) == 1


def test_the_pagination_clamps_a_huge_limit_to_the_largest_page(rf):
    from rest_framework.request import Request

    from core.pagination import MAX_PAGE_SIZE, BoundedLimitOffsetPagination

    request = Request(rf.get("/api/contestants/", {"limit": str(10**20)}))
    assert BoundedLimitOffsetPagination().get_limit(request) == MAX_PAGE_SIZE


@pytest.mark.django_db
@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize(
    "query", [{"offset": str(10**20)}, {"limit": "abc"}, {"offset": "-1"}, {"limit": "0"}]
)
def test_a_list_refuses_a_malformed_page_with_a_message(admin_api, path, query):
    response = admin_api.get(path, query)
    assert response.status_code == 400, response.content[:300]
    (name,) = query
    assert name in response.json()[name][0]


@pytest.mark.django_db
def test_an_unknown_api_path_is_a_404_in_json(admin_api):
    response = admin_api.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "/api/no-such-thing/" in response.json()["detail"]


@pytest.mark.django_db
def test_an_unknown_v1_path_is_a_404_in_openai_shape(admin_api):
    response = admin_api.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.django_db
def test_a_method_the_api_does_not_offer_is_a_405_in_json(admin_api):
    response = admin_api.put("/api/me/")
    assert response.status_code == 405
    assert "PUT" in response.json()["detail"]


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
@pytest.mark.parametrize(
    "path,shape",
    [("/api/battles/", "detail"), ("/v1/chat/completions", "error")],
)
def test_a_body_over_the_size_limit_is_a_413_in_json(admin_api, path, shape):
    body = json.dumps({"prompt": "x" * 5000})
    response = admin_api.post(path, body, content_type="application/json")
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"] == "application/json"
    message = (
        response.json()["detail"] if shape == "detail" else response.json()["error"]["message"]
    )
    assert "1000 bytes" in message


def test_an_unhandled_error_under_the_api_is_a_500_in_json(rf):
    from core.api_errors import server_error

    response = server_error(rf.get("/api/contestants/"))
    assert response.status_code == 500
    assert json.loads(response.content)["detail"]
    page = server_error(rf.get("/arena/"))
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/generations/", {"contestant": "\x00", "messages": [], "seed": 0}),
        ("/api/training/runs/", {"base_model": "tiny\x00", "kind": "dpo", "snapshot": 0}),
        ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "\x00"}]}),
    ],
)
def test_a_json_body_holding_a_nul_character_is_refused_with_a_message(admin_api, path, body):
    """PostgreSQL cannot compare text holding NUL: refused before any query, on every database."""
    response = admin_api.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert "NUL character" in json.dumps(response.json())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address",
    ["/api/contestants/%00/", "/api/contestants/?search=%00", "/arena/leaderboard/?category=%00"],
)
def test_an_address_holding_a_nul_character_is_refused_with_a_message(admin_api, address):
    response = admin_api.get(address)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


@pytest.mark.django_db
def test_a_form_body_holding_a_nul_character_is_refused_with_a_message(admin_api):
    response = admin_api.post(
        "/api/generations/",
        "contestant=%00&seed=0",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "NUL character" in json.dumps(response.json())


@pytest.mark.django_db
def test_a_multipart_field_holding_a_nul_character_is_refused_with_a_message(admin_api):
    response = admin_api.post("/api/generations/", {"contestant": "a\x00b", "seed": "0"})
    assert response.status_code == 400
    assert "NUL character" in json.dumps(response.json())
