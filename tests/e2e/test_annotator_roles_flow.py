"""Annotators, reviewers and researchers in the browser at 1366 px: a ranking that must be
placed by hand (a running clock, an order that follows the typing), a refused reject shown in
place, the annotator's own work with the reviewer's comment, and each role's home page."""

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import DatasetSnapshot, Ranking, ReviewStatus, SnapshotStatus
from tests.annotation.factories import CompletionFactory, ProjectFactory, PromptFactory
from tests.e2e.conftest import screenshots_folder

WIDE = {"width": 1366, "height": 900}


def _save(page, name: str) -> None:
    folder = screenshots_folder()
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _log_in(page, url, username, password):
    page.set_viewport_size(WIDE)
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def _project(contestants=()):
    project = ProjectFactory(slug="blind", name="Blind", overlap=1, candidates_per_prompt=2)
    project.contestants.set(contestants)
    for question in ("How do I reverse a list?", "What is a tuple?"):
        prompt = PromptFactory(project=project, messages=[{"role": "user", "content": question}])
        answers = [CompletionFactory(prompt=prompt, text=f"Answer {n}") for n in "123"]
        services.ranking_item_create(prompt=prompt, completions=answers)
    return project


@pytest.mark.django_db(transaction=True)
def test_a_ranking_must_be_placed_by_hand_and_follows_the_typed_order(live_server, page, annotator):
    _project()
    _log_in(page, live_server.url, "ann", "pw-ann")
    page.goto(f"{live_server.url}/annotation/projects/blind/")
    page.clock.install()
    page.get_by_role("button", name="Next task").click()
    expect(page.get_by_role("heading", name="Rank the answers")).to_be_visible()

    clock = page.locator(".rank-clock")
    expect(clock).to_have_text("0:00")
    # The page's script has read its start time (on a loaded machine it may run after the
    # heading shows): only then does advancing the clock count as time on the task.
    expect(clock).to_have_attribute("data-running", "true")
    page.clock.run_for(65_000)
    expect(clock).to_have_text("1:05")

    submit = page.get_by_role("button", name="Submit ranking")
    order = page.locator("#id_order")
    placed = page.locator(".rank-list .rank-item")
    expect(order).to_have_value("")
    expect(placed).to_have_count(0)
    expect(submit).to_be_disabled()
    _save(page, "ranking-untouched-1366")

    # The list follows the field while it is typed, before the field loses focus.
    order.press_sequentially("B > A")
    expect(order).to_be_focused()
    expect(placed).to_have_count(2)
    expect(placed.nth(0)).to_have_attribute("data-letter", "B")
    expect(page.locator(".rank-status")).to_have_text("Place every answer: C is not placed yet.")
    expect(submit).to_be_disabled()
    _save(page, "ranking-partly-placed-1366")
    order.press_sequentially(" = C")
    expect(placed).to_have_count(3)
    expect(page.locator(".rank-pool .rank-item")).to_have_count(0)
    expect(submit).to_be_enabled()

    # Take one back out by mouse: submit is disabled again until it is placed once more.
    # (the field loses focus to the click: the list must not move under the pointer)
    page.locator('.rank-list .rank-item[data-letter="C"] .rank-out').click()
    expect(order).to_have_value("B > A")
    expect(submit).to_be_disabled()
    page.locator('.rank-pool .rank-item[data-letter="C"]').click()
    expect(order).to_have_value("B > A > C")
    _save(page, "ranking-placed-1366")
    submit.click()
    expect(page.get_by_role("heading", name="Rank the answers")).to_be_visible()
    ranking = Ranking.objects.get(annotator=annotator)
    assert len(ranking.groups) == 3


@pytest.mark.django_db(transaction=True)
def test_a_reject_without_a_comment_is_refused_in_place_and_the_annotator_reads_the_reason(
    live_server, page, browser, annotator, reviewer
):
    project = _project()
    assignment = services.task_next(project=project, user=annotator)
    ranking = services.ranking_submit(assignment=assignment, user=annotator, order="A > B > C")

    review = browser.new_page()
    _log_in(review, live_server.url, "rev", "pw-rev")
    review.goto(f"{live_server.url}/")
    expect(review.locator("#card-reviews")).to_contain_text("1 piece of work waiting for review")
    _save(review, "home-reviewer-1366")
    review.locator("#card-reviews").get_by_role("link", name="Blind").click()
    card = review.locator(f"#ranking-{ranking.id}")
    card.get_by_role("button", name="Reject").click()
    alert = card.get_by_role("alert")
    expect(alert).to_have_text("Say why the work is rejected; the annotator reads it.")
    _save(review, "review-reject-refused-1366")
    ranking.refresh_from_db()
    assert ranking.review_status == ReviewStatus.PENDING
    card.get_by_placeholder("Comment").fill("The order ignores the guidelines.")
    card.get_by_role("button", name="Reject").click()
    expect(review.locator(f"#ranking-{ranking.id} .decided")).to_contain_text("Rejected")

    _log_in(page, live_server.url, "ann", "pw-ann")
    page.goto(f"{live_server.url}/")
    notice = page.get_by_role("status")
    expect(notice).to_contain_text("1 piece of your work came back rejected")
    _save(page, "home-annotator-1366")
    notice.get_by_role("link").click()
    expect(page.get_by_role("heading", name="My work")).to_be_visible()
    item = page.locator(f"#ranking-{ranking.id}")
    expect(item).to_contain_text("Rejected")
    expect(item.locator(".review-comment")).to_contain_text("The order ignores the guidelines.")
    _save(page, "my-work-1366")
    page.goto(f"{live_server.url}/")
    expect(page.get_by_text("came back rejected")).to_have_count(0)


@pytest.mark.django_db(transaction=True)
def test_each_role_sees_its_own_cards_and_annotators_no_model_names(
    live_server, page, browser, annotator, researcher
):
    from arena.services import contestant_create

    contestants = [
        contestant_create(
            name=name, display_name=name.title(), backend="local", model_path=f"/models/{name}"
        )
        for name in ("alpha-model", "beta-model")
    ]
    _project(contestants)
    DatasetSnapshot.objects.create(
        name="prefs", source="rankings", format="preference", status=SnapshotStatus.BUILDING
    )
    _log_in(page, live_server.url, "ann", "pw-ann")
    page.goto(f"{live_server.url}/")
    expect(page.locator("#card-tasks")).to_contain_text("2 tasks waiting for you")
    expect(page.locator("#card-training")).to_have_count(0)
    expect(page.get_by_role("link", name="Training")).to_have_count(0)
    page.locator("#card-tasks").get_by_role("link", name="Blind").click()
    expect(page.get_by_text("K = 3")).to_be_visible()
    expect(page.get_by_text("Alpha-Model")).to_have_count(0)
    _save(page, "project-annotator-1366")

    research = browser.new_page()
    _log_in(research, live_server.url, "res", "pw-res")
    research.goto(f"{live_server.url}/")
    expect(research.locator("#card-datasets")).to_contain_text("1 snapshot being built")
    expect(research.locator("#card-training")).to_contain_text("No run queued or running")
    expect(research.locator("#card-tasks")).to_have_count(0)
    _save(research, "home-researcher-1366")
    research.goto(f"{live_server.url}/annotation/projects/blind/")
    expect(research.get_by_text("Alpha-Model")).to_be_visible()
