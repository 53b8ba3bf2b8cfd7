"""A researcher builds a dataset snapshot from a project's judgments in the browser, watches it
build through a real worker, reads its card and downloads its files."""

import json

import pyarrow.parquet as pq
import pytest
from playwright.sync_api import expect

from annotation.models import DatasetSnapshot, Ranking
from tests.annotation.factories import CompletionFactory, ProjectFactory, PromptFactory


def _judged_project(annotator):
    """Four prompts with one ranking of three answers each (3 pairs each) and one ranking with a
    tie (`A = B > C`: 2 strict pairs): 14 preference pairs once ties are dropped."""
    project = ProjectFactory(name="Helpfulness", slug="helpfulness")
    for n in range(5):
        prompt = PromptFactory(
            project=project,
            category="math" if n % 2 else "writing",
            messages=[{"role": "user", "content": f"Question {n}?"}],
        )
        a, b, c = (CompletionFactory(prompt=prompt, text=f"Answer {n}{x}") for x in "abc")
        groups = [[a.pk, b.pk], [c.pk]] if n == 4 else [[a.pk], [b.pk], [c.pk]]
        Ranking.objects.create(project=project, prompt=prompt, annotator=annotator, groups=groups)
    return project


@pytest.mark.django_db(transaction=True)
def test_a_researcher_builds_a_snapshot_and_downloads_it(
    live_server, page, screenshot, researcher, annotator, celery_worker
):
    _judged_project(annotator)
    page.goto(f"{live_server.url}/accounts/login/?next=/annotation/datasets/")
    page.get_by_label("Username").fill("res")
    page.get_by_label("Password").fill("pw-res")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dataset snapshots")).to_be_visible()
    expect(page.get_by_text("No snapshots yet.")).to_be_visible()

    page.get_by_label("Name").fill("helpfulness-prefs")
    page.get_by_label("Source").select_option("rankings")
    page.get_by_label("Project").select_option(label="Helpfulness")
    page.get_by_label("Format").select_option("preference")
    page.get_by_label("Style").select_option("standard")
    page.get_by_label("Pairs from a ranking").select_option("all")
    page.get_by_label("Ties").select_option("drop")
    screenshot("datasets-new-snapshot")
    page.get_by_role("button", name="Build snapshot").click()

    # The page polls its status fragment until the worker has built the files.
    expect(page.get_by_role("heading", name="Dataset · helpfulness-prefs")).to_be_visible()
    expect(page.get_by_role("heading", name="Status: Ready")).to_be_visible(timeout=90_000)
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.row_count == 14, snapshot.error
    expect(page.get_by_text(snapshot.content_hash)).to_be_visible()
    card = page.locator("section", has=page.get_by_role("heading", name="Dataset card"))
    expect(card.locator(".stat", has_text="Judgments")).to_contain_text("5")
    expect(card.locator(".stat", has_text="Prompts")).to_contain_text("5")
    expect(card).to_contain_text("math (2)")
    screenshot("datasets-snapshot-ready")

    with page.expect_download() as parquet_download:
        page.get_by_role("link", name="Download Parquet").click()
    table = pq.read_table(parquet_download.value.path())
    assert table.num_rows == 14
    assert {"prompt", "chosen", "rejected", "prompt_id", "annotators"} <= set(table.column_names)
    assert table.column("annotators").to_pylist()[0] == ["ann"]

    with page.expect_download() as jsonl_download:
        page.get_by_role("link", name="Download JSONL").click()
    lines = [
        json.loads(line)
        for line in open(jsonl_download.value.path(), encoding="utf-8").read().splitlines()
    ]
    assert len(lines) == 14
    assert lines[0]["prompt"] == "Question 0?"
    assert (lines[0]["chosen"], lines[0]["rejected"]) == ("Answer 0a", "Answer 0b")

    with page.expect_download() as card_download:
        page.get_by_role("link", name="Dataset card (README.md)").click()
    readme = open(card_download.value.path(), encoding="utf-8").read()
    assert "14 rows of **preference** data" in readme

    page.get_by_role("link", name="All snapshots").click()
    row = page.get_by_role("row", name="helpfulness-prefs")
    expect(row).to_contain_text("Ready")
    expect(row).to_contain_text("14")
    screenshot("datasets-list")


@pytest.mark.django_db(transaction=True)
def test_a_snapshot_that_matches_nothing_fails_with_a_reason_and_can_be_built_again(
    live_server, page, screenshot, researcher, annotator, celery_worker
):
    _judged_project(annotator)
    page.goto(f"{live_server.url}/accounts/login/?next=/annotation/datasets/")
    page.get_by_label("Username").fill("res")
    page.get_by_label("Password").fill("pw-res")
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Name").fill("poetry-only")
    page.get_by_label("Project").select_option(label="Helpfulness")
    page.get_by_label("Categories").fill("poetry")
    page.get_by_role("button", name="Build snapshot").click()

    expect(page.get_by_role("heading", name="Status: Failed")).to_be_visible(timeout=90_000)
    expect(page.get_by_role("alert")).to_have_text("No rows match these filters.")
    expect(page.get_by_text("categories: poetry")).to_be_visible()
    screenshot("datasets-snapshot-failed")

    page.get_by_role("button", name="Build again").click()
    expect(page.get_by_role("heading", name="Status: Failed")).to_be_visible(timeout=90_000)
    first, again = DatasetSnapshot.objects.order_by("pk")
    assert page.url.endswith(f"/annotation/datasets/{again.pk}/")
    assert (again.name, again.filters) == (first.name, first.filters)
