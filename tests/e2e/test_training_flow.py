"""An admin starts a training run in the browser and watches its progress bar move until the
new model is in the arena."""

import pytest
from playwright.sync_api import expect

from tests.training.test_runs import WORDS, _snapshot
from training.models import TrainingRun


@pytest.mark.django_db(transaction=True)
def test_an_admin_starts_a_run_and_watches_it_finish(
    live_server, page, screenshot, admin_user, tiny_contestant, celery_worker
):
    snapshot = _snapshot(
        "preference",
        [
            {"prompt": WORDS[i % 6], "chosen": WORDS[(i + 1) % 6], "rejected": WORDS[(i + 2) % 6]}
            for i in range(3000)
        ],
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/training/")
    page.get_by_label("Username").fill("adm")
    page.get_by_label("Password").fill("pw-adm")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New run").click()
    page.get_by_label("Kind").select_option("dpo")
    page.get_by_label("Loss type").select_option("sigmoid")
    page.get_by_label("Base model").select_option("tiny-llama")
    page.get_by_label("Snapshot").select_option(str(snapshot.pk))
    # Only the DPO family's settings show, each with its default as placeholder.
    assert page.get_by_label("beta", exact=True).is_visible()
    assert not page.get_by_label("eval_fraction", exact=True).is_visible()
    assert page.get_by_label("learning_rate", exact=True).get_attribute("placeholder") == "1e-5"
    page.get_by_label("batch_size", exact=True).fill("2")
    page.get_by_label("max_length", exact=True).fill("48")
    screenshot("training-new-run")
    page.get_by_role("button", name="Start").click()
    bar = page.locator("progress.bar")
    expect(bar).to_be_visible()
    values = set()
    for _ in range(480):  # watch for up to two minutes
        values.add(int(bar.get_attribute("value") or 0))
        if page.locator(".status-succeeded").count():
            break
        page.wait_for_timeout(250)
    expect(page.locator(".status-succeeded")).to_be_visible(timeout=120_000)
    screenshot("training-run-succeeded")
    run = TrainingRun.objects.get()
    assert run.result_contestant is not None, run.error
    assert len(values - {0, 100}) >= 1 or run.total_steps <= 2, values  # seen part-way
    expect(page.get_by_text("is now an arena contestant")).to_be_visible()
