"""Each role's main pages on a phone (390 px) and a laptop (1366 px): nothing is wider than the
screen, log-out is reachable (through the menu on a phone), axe-core finds no serious or
critical violation, and every control can be reached with the Tab key. Screenshots of every
page at both widths are saved for a person to look at."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import pages

ROLE_USERS = {"visitor": None, "annotator": "ann", "researcher": "res", "admin": "adm"}


def _main_pages(role: str, url: str, world: dict) -> list[tuple[str, str | None]]:
    """(name, address) of the pages each role opens first; None: reached by clicking."""
    common = [("home", "/"), ("arena-battle", None), ("leaderboard", "/arena/leaderboard/")]
    if role == "visitor":  # the arena and both leaderboards are open to everyone
        return [*common, ("log-in", "/accounts/login/"), ("evaluation", "/evaluation/")]
    if role == "annotator":
        return [
            *common,
            ("projects", "/annotation/"),
            ("project", "/annotation/projects/layout/"),
            ("task", None),
            ("evaluation", "/evaluation/"),
        ]
    run = world["finished"].pk
    pages_ = [
        *common,
        ("project", "/annotation/projects/layout/"),
        ("training", "/training/"),
        ("training-run", f"/training/runs/{run}/"),
        ("evaluation", "/evaluation/"),
    ]
    if role == "admin":
        pages_.append(("dashboard", "/annotation/projects/layout/dashboard/"))
    return pages_


def _open(page, url: str, name: str, address: str | None) -> None:
    if name == "arena-battle":
        pages.open_battle(page, url)
    elif name == "task":
        page.goto(f"{url}/annotation/projects/layout/")
        page.get_by_role("button", name="Next task").click()
        expect(page).to_have_url(re.compile(r"/annotation/tasks/\d+/"))
    else:
        response = page.goto(f"{url}{address}")
        assert response.status == 200, (address, response.status)
    page.wait_for_load_state("load")


@pytest.mark.parametrize("width", pages.WIDTHS.values(), ids=pages.WIDTHS.keys())
@pytest.mark.parametrize("role", ROLE_USERS)
@pytest.mark.django_db(transaction=True)
def test_main_pages_fit_the_screen_are_accessible_and_reachable_by_keyboard(
    live_server,
    page,
    screenshot,
    role,
    width,
    annotator,
    researcher,
    admin_user,
    tiny_model_dir,
    tiny_contestant,
):
    world = pages.world(tiny_model_dir, tiny_contestant)
    page.set_viewport_size({"width": width, "height": 800})
    if ROLE_USERS[role]:
        pages.log_in(page, live_server.url, ROLE_USERS[role])
    problems = []
    for name, address in _main_pages(role, live_server.url, world):
        _open(page, live_server.url, name, address)
        screenshot(f"layout-{width}-{role}-{name}")
        pages.assert_fits(page)
        pages.assert_account_reachable(page, signed_in=bool(ROLE_USERS[role]))
        problems += pages.axe_violations(page)
        if width == pages.WIDTHS["desktop"]:
            missed = pages.unreachable_controls(page)
            problems += [f"{page.url}: not reachable by Tab: {m}" for m in missed]
    assert not problems, "\n".join(problems)


@pytest.mark.django_db(transaction=True)
def test_the_phone_menu_opens_and_closes_with_the_keyboard(live_server, page, annotator):
    page.set_viewport_size({"width": pages.WIDTHS["phone"], "height": 800})
    pages.log_in(page, live_server.url, "ann")
    toggle = page.get_by_role("button", name="Menu")
    nav = page.get_by_role("navigation", name="Main")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    page.keyboard.press("Tab")  # the skip link
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Arena")).to_be_focused()
    page.keyboard.press("Escape")
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    nav.get_by_role("link", name="Annotation").click()
    expect(page.get_by_role("heading", name="Annotation projects")).to_be_visible()


@pytest.mark.django_db(transaction=True)
def test_the_battle_is_usable_on_a_phone(
    live_server, page, screenshot, annotator, tiny_model_dir, tiny_contestant
):
    """The prompt box, the answers, the four vote buttons and the follow-up box all fit a
    390 px screen, with room to type; icons are drawn, not emoji."""
    pages.world(tiny_model_dir, tiny_contestant)
    page.set_viewport_size({"width": pages.WIDTHS["phone"], "height": 800})
    pages.log_in(page, live_server.url, "ann")
    page.goto(f"{live_server.url}/arena/")
    prompt = page.get_by_label("Prompt")
    assert prompt.bounding_box()["width"] >= 300
    pages.open_battle(page, live_server.url)
    screenshot("battle-phone")
    pages.assert_fits(page)
    for name in ("A is better", "B is better", "Tie", "Both are bad"):
        button = page.get_by_role("button", name=name)
        expect(button).to_be_in_viewport()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 40, name
        assert button.locator("svg.icon").count() == 1, name
    follow_up = page.get_by_label("Follow-up message")
    assert follow_up.bounding_box()["width"] >= 300
    html = page.content()
    assert not any(ch in html for ch in "👈👉🤝👎🔄"), "emoji left on the battle page"


@pytest.mark.django_db(transaction=True)
def test_the_favicon_is_served(live_server, page):
    page.goto(f"{live_server.url}/accounts/login/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon.endswith(".svg")
    response = page.request.get(f"{live_server.url}{icon}")
    assert response.status == 200 and response.text().startswith("<svg")
    legacy = page.request.get(f"{live_server.url}/favicon.ico")
    assert legacy.status == 200 and legacy.text().startswith("<svg")
