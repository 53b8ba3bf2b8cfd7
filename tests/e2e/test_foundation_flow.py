"""A person logs in, opens the model registry, asks a model a question and reads the answer."""

import pytest
from playwright.sync_api import expect

from arena.models import Generation


@pytest.mark.django_db(transaction=True)
def test_a_user_logs_in_and_a_model_answers_through_the_worker(
    live_server, page, screenshot, annotator, tiny_contestant, celery_worker
):
    page.goto(f"{live_server.url}/")
    screenshot("home-anonymous")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("pw-ann")
    page.get_by_role("button", name="Log in").click()
    page.locator("nav.areas").get_by_role("link", name="Arena").click()
    page.locator("nav.tabs").get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    page.get_by_label("Prompt").fill("what is the capital of france")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator(".answer")
    expect(answer).to_have_attribute("data-status", "succeeded", timeout=60_000)
    screenshot("arena-models-answer")
    assert Generation.objects.get().status == "succeeded"
