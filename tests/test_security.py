"""Security: hostile text renders inert, forms and htmx posts need the CSRF token, login
guessing is throttled, battle uploads are limited in type."""

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from arena.models import Generation
from core.markdown import render_markdown

PAYLOADS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    "<svg onload=alert(3)></svg>",
    '<a href="javascript:alert(4)">click</a>',
    "[click](javascript:alert(5))",
    '<iframe src="https://evil.example"></iframe>',
    '<div style="background:url(javascript:alert(6))" onclick="alert(7)">x</div>',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==)",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_markdown_renders_inert(payload):
    html = render_markdown(payload).lower()
    for bad in (
        "<script",
        "onerror",
        "onload",
        "onclick",
        "javascript:",
        "<iframe",
        "data:text",
        "<svg",
        "style=",
    ):
        assert bad not in html


def test_code_blocks_keep_their_text_escaped():
    html = render_markdown("```html\n<script>alert(1)</script>\n```")
    assert "&lt;script&gt;" in html and "<script>" not in html and "<pre>" in html


@pytest.mark.django_db
def test_a_model_answer_with_payloads_is_inert_on_the_page(
    annotator_client, annotator, tiny_contestant
):
    generation = Generation.objects.create(
        contestant=tiny_contestant,
        messages=[{"role": "user", "content": "q"}],
        requested_by=annotator,
        status="succeeded",
        output="\n\n".join(PAYLOADS),
    )
    html = annotator_client.get(f"/arena/generations/{generation.id}/").content.decode().lower()
    for bad in ("<script>alert", "onerror=", "javascript:alert", "<iframe"):
        assert bad not in html


@pytest.mark.django_db
def test_forms_and_htmx_posts_need_the_csrf_token(annotator, tiny_contestant):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(annotator)
    refused = browser.post("/arena/", {"prompt": "hi"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    page = browser.get("/arena/")
    token = page.cookies["csrftoken"].value
    accepted = browser.post(
        "/arena/models/",
        {"contestant": "tiny-llama", "prompt": "hi"},
        HTTP_X_CSRFTOKEN=token,
        HTTP_HX_REQUEST="true",
    )
    assert accepted.status_code == 200


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=3)
def test_password_guessing_is_throttled(client, annotator):
    cache.clear()
    for _ in range(3):
        assert (
            client.post("/accounts/login/", {"username": "ann", "password": "x"}).status_code == 200
        )
    blocked = client.post("/accounts/login/", {"username": "ann", "password": "pw-ann"})
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.content.decode()
    cache.clear()
    assert (
        client.post("/accounts/login/", {"username": "ann", "password": "pw-ann"}).status_code
        == 302
    )
