"""A visitor fights an arena battle, votes with the keyboard, and sees the names revealed."""

import pytest
from playwright.sync_api import expect

from arena import services
from arena.models import Battle


@pytest.mark.django_db(transaction=True)
def test_a_visitor_fights_a_battle_and_votes(
    live_server, page, screenshot, tiny_contestant, tiny_model_dir, celery_worker
):
    services.contestant_create(
        name="tiny-two",
        display_name="Tiny Two",
        backend="local",
        model_path=str(tiny_model_dir),
        temperature=0.0,
        max_new_tokens=8,
        organization="Other Lab",
    )
    page.goto(f"{live_server.url}/arena/")
    page.get_by_label("Prompt").fill("write a short poem about the sea")
    page.get_by_role("button", name="Send").click()
    vote_a = page.get_by_role("button", name="A is better")
    expect(vote_a).to_be_enabled(timeout=90_000)
    expect(page.locator("#battle")).not_to_contain_text("Tiny")
    screenshot("arena-battle-before-vote")
    page.keyboard.press("b")
    expect(page.locator(".reveal")).to_contain_text("Tiny", timeout=10_000)
    screenshot("arena-battle-after-vote")
    assert Battle.objects.get().winner == "model_b"
    expect(page.get_by_role("button", name="A is better")).to_have_count(0)


@pytest.mark.django_db(transaction=True)
def test_a_prompt_over_the_limit_is_announced_before_sending_not_cut(
    live_server, page, screenshot, tiny_contestant
):
    page.goto(f"{live_server.url}/arena/")
    box = page.get_by_label("Prompt")
    box.fill("x" * 20_500)
    assert len(box.input_value()) == 20_500  # nothing cut by the browser
    expect(page.locator(".char-count")).to_contain_text("500 over the limit of 20,000")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    screenshot("arena-prompt-too-long")
    box.fill("x" * 19_000)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


@pytest.mark.django_db(transaction=True)
def test_answers_grow_on_the_battle_page_as_the_worker_writes_them(
    live_server, page, screenshot, tiny_contestant, tiny_model_dir, monkeypatch
):
    from arena.models import Generation
    from core import jobs

    # The test plays the worker: no message leaves (the live server runs in this process), so
    # no worker started by another test answers first.
    monkeypatch.setattr(jobs, "publish_on_commit", lambda *args, **options: None)

    services.contestant_create(
        name="tiny-two", display_name="Tiny Two", backend="local", model_path=str(tiny_model_dir)
    )
    page.goto(f"{live_server.url}/arena/")
    page.get_by_label("Prompt").fill("a river poem")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#battle")).to_contain_text("Both models are writing")
    turn = Battle.objects.get().turns.get()
    # What a worker's partial writes leave on the rows, in two steps.
    for text in ("Rivers carry", "Rivers carry water to the sea"):
        Generation.objects.filter(pk=turn.generation_a_id).update(status="running", output=text)
        expect(page.locator("#battle .streaming").first).to_have_text(text)
    expect(page.locator("#battle")).not_to_contain_text("Both models are writing")
    expect(page.get_by_role("button", name="A is better")).to_be_disabled()
    screenshot("arena-battle-streaming")
    Generation.objects.filter(pk=turn.generation_a_id).update(status="succeeded")
    Generation.objects.filter(pk=turn.generation_b_id).update(status="succeeded", output="Flow.")
    expect(page.get_by_role("button", name="A is better")).to_be_enabled()
    expect(page.locator("#battle .streaming")).to_have_count(0)
