"""Pages: home, login, the three areas, and role checks."""

import pytest

from arena.models import Generation

pytestmark = pytest.mark.django_db


def test_home_page_links_the_areas_open_to_a_visitor(client):
    html = client.get("/").content.decode()
    for href in ("/arena/", "/annotation/"):
        assert href in html
    assert 'href="/training/"' not in html  # researchers' area: no card leading to a refusal
    assert "htmx" in html  # served locally by django-htmx


def test_healthz_answers(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_login_with_the_right_password_then_logout(client, annotator):
    bad = client.post("/accounts/login/", {"username": "ann", "password": "nope"})
    assert bad.status_code == 200 and "correct username and password" in bad.content.decode()
    good = client.post("/accounts/login/", {"username": "ann", "password": "pw-ann"})
    assert good.status_code == 302
    assert client.get("/arena/models/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/arena/models/").status_code == 302


def test_the_models_page_has_the_arena_tabs_with_models_active(annotator_client):
    page = annotator_client.get("/arena/models/").content.decode()
    assert 'href="/arena/side-by-side/"' in page
    assert 'href="/arena/models/" class="active"' in page


def test_areas_need_a_login(client):
    for url in ("/arena/models/", "/annotation/", "/training/", "/accounts/token/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_training_area_is_for_researchers_and_admins(annotator_client, researcher_client):
    assert annotator_client.get("/training/").status_code == 403
    assert researcher_client.get("/training/").status_code == 200


def test_trying_a_model_through_htmx_renders_a_polling_answer(
    annotator_client, tiny_contestant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = annotator_client.post(
            "/arena/models/",
            {"contestant": "tiny-llama", "prompt": "two plus two"},
            HTTP_HX_REQUEST="true",
        )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # only the fragment
    generation = Generation.objects.get()
    assert f'hx-get="/arena/generations/{generation.id}/"' in html
    assert len(callbacks) == 1


def test_an_empty_prompt_is_refused_with_a_message(annotator_client, tiny_contestant):
    response = annotator_client.post("/arena/models/", {"contestant": "tiny-llama", "prompt": " "})
    assert "This field is required" in response.content.decode()
    assert Generation.objects.count() == 0


def test_finished_answer_stops_polling_and_renders_sanitised_markdown(
    annotator_client, annotator, tiny_contestant
):
    generation = Generation.objects.create(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "q"}],
        requested_by=annotator,
        status="succeeded",
        output="**bold** <script>alert(1)</script><img src=x onerror=alert(2)>",
    )
    html = annotator_client.get(f"/arena/generations/{generation.id}/").content.decode()
    assert "<strong>bold</strong>" in html
    assert "<script>" not in html and "onerror" not in html
    assert "hx-trigger" not in html


def test_someone_elses_generation_is_not_found(outsider_client, annotator, tiny_contestant):
    generation = Generation.objects.create(
        contestant=tiny_contestant, messages=[], requested_by=annotator
    )
    assert outsider_client.get(f"/arena/generations/{generation.id}/").status_code == 404


def test_api_token_page_creates_and_revokes(annotator_client, annotator):
    from rest_framework.authtoken.models import Token

    annotator_client.post("/accounts/token/", {"action": "create"})
    key = Token.objects.get(user=annotator).key
    assert key in annotator_client.get("/accounts/token/").content.decode()
    annotator_client.post("/accounts/token/", {"action": "revoke"})
    assert not Token.objects.filter(user=annotator).exists()


def test_api_token_page_makes_a_token_with_a_lifetime(annotator_client, annotator):
    from core.models import TokenExpiry

    annotator_client.post("/accounts/token/", {"action": "create", "expires_in_days": "30"})
    assert TokenExpiry.objects.get(token__user=annotator)
    assert "Expires " in annotator_client.get("/accounts/token/").content.decode()
    refused = annotator_client.post(
        "/accounts/token/", {"action": "create", "expires_in_days": "7"}
    )
    assert refused.status_code == 400  # only the lifetimes offered


def test_models_page_leaves_out_vote_only_imported_models(annotator_client, tiny_contestant):
    from arena.services import contestant_create

    contestant_create(name="gemini-x", display_name="gemini-x", backend="external")
    html = annotator_client.get("/arena/models/").content.decode()
    assert "Tiny Llama" in html and "gemini-x" not in html
