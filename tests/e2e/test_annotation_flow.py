"""An annotator works a short shift with the keyboard only (a ranking, then a demonstration);
a reviewer rejects the ranking; an admin opens the dashboard."""

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Demonstration, Item, Ranking, ReviewStatus, TaskKind
from tests.annotation.factories import CompletionFactory, ProjectFactory, PromptFactory
from tests.e2e.conftest import screenshots_folder


def _save(other_page, name: str) -> None:
    """Screenshots of the reviewer's and admin's pages (the `screenshot` fixture follows only the
    annotator's page), saved beside the others."""
    folder = screenshots_folder()
    folder.mkdir(parents=True, exist_ok=True)
    other_page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _log_in(page, url, username, password):
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")


@pytest.mark.django_db(transaction=True)
def test_an_annotator_ranks_and_writes_with_the_keyboard_and_a_reviewer_rejects(
    live_server, page, browser, screenshot, annotator, reviewer, admin_user
):
    answers = _project_with_a_ranking_and_a_demonstration()
    _rank_and_write_with_keys(page, live_server.url, screenshot)

    ranking = Ranking.objects.get(annotator=annotator)
    ids = {c.text.split()[0]: c.id for c in answers}
    assert sorted(ranking.groups[0]) == sorted([ids["Use"], ids["Call"]])
    assert ranking.groups[1] == [ids["You"]]
    assert Demonstration.objects.get(annotator=annotator).text.startswith("Waves fold")

    review = browser.new_page()
    _log_in(review, live_server.url, "rev", "pw-rev")
    review.goto(f"{live_server.url}/annotation/projects/shift/review/")
    card = review.locator(f"#ranking-{ranking.id}")
    card.get_by_placeholder("Comment").fill("Slicing copies; the in-place method is better here.")
    _save(review, "annotation-review-before")
    card.get_by_role("button", name="Reject").click()
    expect(review.locator(f"#ranking-{ranking.id} .decided")).to_contain_text("Rejected")
    _save(review, "annotation-review")
    ranking.refresh_from_db()
    assert ranking.review_status == ReviewStatus.REJECTED

    admin = browser.new_page()
    _log_in(admin, live_server.url, "adm", "pw-adm")
    admin.goto(f"{live_server.url}/annotation/projects/shift/dashboard/")
    expect(admin.get_by_role("heading", name="Annotators")).to_be_visible()
    _save(admin, "annotation-dashboard")


def _project_with_a_ranking_and_a_demonstration():
    project = ProjectFactory(
        slug="shift",
        name="Shift",
        overlap=1,
        guidelines="Prefer *correct* answers. Use code blocks for code.",
    )
    prompt = PromptFactory(
        project=project,
        messages=[{"role": "user", "content": "How do I reverse a list in Python?"}],
    )
    answers = [
        CompletionFactory(prompt=prompt, text="Use slicing:\n\n```python\nitems[::-1]\n```"),
        CompletionFactory(prompt=prompt, text="Call `items.reverse()` to reverse in place."),
        CompletionFactory(prompt=prompt, text="You cannot reverse lists."),
    ]
    services.ranking_item_create(prompt=prompt, completions=answers)
    demo_prompt = PromptFactory(
        project=project, messages=[{"role": "user", "content": "Write a haiku about the sea."}]
    )
    Item.objects.create(project=project, prompt=demo_prompt, kind=TaskKind.DEMONSTRATION)
    return answers


def _rank_and_write_with_keys(page, url: str, screenshot) -> None:
    _log_in(page, url, "ann", "pw-ann")
    page.goto(f"{url}/annotation/projects/shift/")
    screenshot("annotation-project")
    page.get_by_role("button", name="Next task").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Rank the answers")).to_be_visible()
    # The page's script is listening (it marks its clock once its keys are bound): no key is lost.
    expect(page.locator(".rank-clock")).to_have_attribute("data-running", "true")

    # Place the two right answers, then the wrong one, and tie the right ones, with keys only.
    letters = {}
    for letter in "ABC":
        text = page.locator(f"#answer-{letter} .answer-body").inner_text()
        letters[text.split()[0]] = letter
    wrong, slicing, method = letters["You"], letters["Use"], letters["Call"]
    submit = page.get_by_role("button", name="Submit ranking")
    for letter in (slicing, method, wrong):
        expect(submit).to_be_disabled()
        page.locator("body").press(letter.lower())
        page.keyboard.press("Enter")
    page.locator("body").press(slicing.lower())
    page.keyboard.press("=")
    expect(page.locator("#id_order")).to_have_value(f"{slicing} = {method} > {wrong}")
    expect(submit).to_be_enabled()
    screenshot("annotation-ranking")
    page.keyboard.press("Control+Enter")

    expect(page.get_by_role("heading", name="Write the ideal answer")).to_be_visible()
    page.get_by_label("Your answer").focus()
    page.keyboard.type(
        "Waves fold on the shore\n\n**salt** wind carries gull voices\n\nthe tide keeps time"
    )
    expect(page.locator("#preview strong")).to_have_text("salt")
    screenshot("annotation-demonstration")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Nothing left in the queue")).to_be_visible()
