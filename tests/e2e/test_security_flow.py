"""The pages a person reaches most pass the Content-Security-Policy (the autouse check in
conftest fails on any refusal), and what used inline script still works."""

import pytest
from playwright.sync_api import expect


@pytest.mark.django_db(transaction=True)
def test_an_admin_browses_the_site_under_the_content_security_policy(live_server, page, admin_user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("adm")
    page.get_by_label("Password").fill("pw-adm")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    for path in ("/", "/arena/leaderboard/", "/annotation/", "/accounts/token/", "/admin/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info")).to_be_visible()  # its script ran
    page.goto(f"{live_server.url}/training/")
    page.get_by_label("Status").select_option("failed")  # submits without an inline handler
    expect(page).to_have_url(f"{live_server.url}/training/?status=failed&kind=")
