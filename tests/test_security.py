"""Security: hostile text renders inert, forms and htmx posts need the CSRF token, login
guessing is throttled, battle uploads are limited in type."""

import pytest
from django.test import Client, override_settings

from arena.models import Generation
from core import login_throttle
from core.client import client_address
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


def _html_login(client, password, address="203.0.113.5", username="ann", **headers):
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


def _api_login(client, password, address="203.0.113.5", username="ann", **headers):
    return client.post(
        "/api/auth/token/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


class _Clock:
    """The throttle's clock, standing still unless a test moves it: waits of a second do not
    end on their own while a busy machine runs the test."""

    def __init__(self):
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def throttle_clock(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(login_throttle, "clock", clock)
    return clock


def _wait_is_over(clock: _Clock):
    """What time does for a waiting client: the current waits end (the counts stay)."""
    clock.now += 3600


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=3)
def test_password_guessing_on_the_login_page_waits_longer_after_each_failure(
    client, annotator, throttle_clock
):
    for _ in range(3):
        assert _html_login(client, "x").status_code == 200
    blocked = _html_login(client, "pw-ann")  # even the right password waits
    assert blocked.status_code == 429 and blocked["Retry-After"] == "1"
    assert "Too many failed logins; try again in 1 second." in blocked.content.decode()
    _wait_is_over(throttle_clock)
    assert _html_login(client, "y").status_code == 200  # one more try, wrong
    assert _html_login(client, "pw-ann")["Retry-After"] == "2"
    _wait_is_over(throttle_clock)
    assert _html_login(client, "z").status_code == 200
    assert _html_login(client, "pw-ann")["Retry-After"] == "4"
    _wait_is_over(throttle_clock)
    assert _html_login(client, "pw-ann").status_code == 302


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=3)
def test_password_guessing_on_the_api_gets_429_with_retry_after_and_a_message(
    api_client, annotator
):
    for _ in range(3):
        assert _api_login(api_client, "x").status_code == 400
    blocked = _api_login(api_client, "pw-ann")
    assert blocked.status_code == 429 and blocked["Retry-After"] == "1"
    assert blocked.json() == {"detail": "Too many failed logins; try again in 1 second."}


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=3)
def test_the_login_page_and_the_api_count_failures_together(client, api_client, annotator):
    assert _html_login(client, "x").status_code == 200
    assert _api_login(api_client, "x").status_code == 400
    assert _html_login(client, "x").status_code == 200
    assert _api_login(api_client, "pw-ann").status_code == 429
    assert _html_login(client, "pw-ann").status_code == 429


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=3, LOGIN_ADDRESS_FAILURES_ALLOWED=5)
def test_a_made_up_x_forwarded_for_does_not_reset_the_count(api_client, annotator):
    """From a peer that is not a trusted proxy the header is the client's own invention."""
    answers = [
        _api_login(api_client, "x", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(8)
    ]
    assert answers[:3] == [400] * 3 and 429 in answers[3:]


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=3, TRUSTED_PROXIES=["10.0.0.0/8"])
def test_behind_a_trusted_proxy_each_client_is_counted_by_its_own_address(api_client, annotator):
    def via_proxy(password, client_ip):
        # The client put a made-up address first; the proxy appended the one it saw.
        forwarded = f"192.0.2.77, {client_ip}"
        return _api_login(api_client, password, "10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)

    for _ in range(3):
        assert via_proxy("x", "203.0.113.9").status_code == 400
    assert via_proxy("x", "203.0.113.9").status_code == 429
    assert via_proxy("pw-ann", "198.51.100.20").status_code == 200  # someone else


@pytest.mark.django_db
@override_settings(
    LOGIN_FAILURES_ALLOWED=2, LOGIN_ADDRESS_FAILURES_ALLOWED=2, LOGIN_USERNAME_FAILURES_ALLOWED=4
)
def test_a_stranger_guessing_from_many_addresses_cannot_keep_a_user_out(api_client, annotator):
    assert _api_login(api_client, "pw-ann", "192.0.2.1").status_code == 200  # the user's own
    guesses = [_api_login(api_client, "x", f"198.51.100.{n}").status_code for n in range(8)]
    assert 429 in guesses  # the username's own allowance ran out
    assert _api_login(api_client, "pw-ann", "198.51.100.99").status_code == 429
    assert _api_login(api_client, "pw-ann", "192.0.2.1").status_code == 200


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=3)
def test_a_guessed_username_from_one_address_does_not_shut_out_the_user_elsewhere(
    api_client, annotator
):
    for _ in range(5):
        _api_login(api_client, "x", "198.51.100.1")
    assert _api_login(api_client, "pw-ann", "198.51.100.1").status_code == 429
    assert _api_login(api_client, "pw-ann", "203.0.113.50").status_code == 200


@pytest.mark.django_db
@override_settings(LOGIN_FAILURES_ALLOWED=1)
def test_parallel_attempts_after_a_wait_let_one_through(rf, annotator, throttle_clock):
    request = rf.post("/api/auth/token/", REMOTE_ADDR="198.51.100.3")
    login_throttle.login_failed(request, "ann")
    _wait_is_over(throttle_clock)
    assert login_throttle.login_wait(request, "ann") == 0  # this attempt claims the turn
    assert login_throttle.login_wait(request, "ann") > 0  # its twin, sent at the same moment


def test_backoff_doubles_from_one_second_up_to_the_ceiling(settings):
    settings.LOGIN_BACKOFF_MAX_S = 60
    waits = [login_throttle.backoff_seconds(n, 3) for n in range(2, 12)]
    assert waits == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", "198.51.100.1", [], "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", ["10.0.0.0/8"], "203.0.113.5"),
        ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "", ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", "not-an-address", ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", "[2001:db8::1]:443", ["10.0.0.0/8"], "2001:db8::1"),
        ("::1", "198.51.100.1:5000", ["::1"], "198.51.100.1"),
    ],
)
def test_the_client_address_believes_x_forwarded_for_only_from_trusted_proxies(
    rf, settings, remote, forwarded, trusted, expected
):
    settings.TRUSTED_PROXIES = trusted
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_whose_nonce_their_scripts_carry(client):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self' 'nonce-" in policy
        and "'unsafe-inline'" not in policy.split("style-src-attr")[0]
    )
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    html = response.content.decode()
    assert f'nonce="{nonce}"' in html  # htmx's script tag
    assert client.get("/accounts/login/")["Content-Security-Policy"] != policy  # fresh each time
    docs = client.get("/api/docs/")
    docs_nonce = docs["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    assert docs.content.decode().count(f'nonce="{docs_nonce}"') == 2  # its style and script


@pytest.mark.django_db
def test_templates_hold_no_inline_script_or_event_handler():
    """What the policy refuses would silently stop working: scripts live in static files."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    for template in root.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*\bnonce=)", text), template
        assert not re.search(r"\son[a-z]+\s*=|hx-on|javascript:", text), template


@pytest.mark.django_db
@override_settings(CONTENT_SECURITY_POLICY="", CONTENT_SECURITY_POLICY_REPORT_ONLY="default-src x")
def test_a_policy_can_be_tried_in_report_only_mode(client):
    response = client.get("/accounts/login/")
    assert "Content-Security-Policy" not in response
    assert response["Content-Security-Policy-Report-Only"] == "default-src x"


@pytest.mark.django_db
def test_the_health_check_answers_head_as_load_balancers_send_it(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600)
def test_with_https_required_pages_redirect_but_the_health_check_does_not(client):
    assert client.get("/accounts/login/")["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200
    secure = client.get("/accounts/login/", secure=True)
    assert secure["Strict-Transport-Security"] == "max-age=3600"


@pytest.mark.django_db
def test_the_admin_login_is_the_throttled_login_page(client, admin_user):
    guessed = client.post("/admin/login/?next=/admin/", {"username": "adm", "password": "pw-adm"})
    assert guessed.status_code == 302 and guessed["Location"] == "/accounts/login/?next=/admin/"
    assert "_auth_user_id" not in client.session  # the admin's form checks no password
    assert client.get("/admin/")["Location"].startswith("/admin/login/")  # Django's own link
