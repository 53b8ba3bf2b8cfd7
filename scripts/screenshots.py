"""Screenshots of the main pages as each demo role sees them, at desktop and phone widths, for
a person to look at (a release's before and after, a review of a change to the layout).

    .venv/bin/python scripts/screenshots.py http://127.0.0.1:8000 var/screenshots/now [png]

Run it against a server with the demo loaded (`make run`, or `manage.py seed_demo` and any web
server). Each role logs in with the demo password and visits its pages; a page that answers an
error is photographed too (that is what the role sees). Files: `<role>-<page>-<width>.jpg`
(JPEG, small enough to keep; `png` for lossless files).
Uses Debian's chromium through Playwright.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

PASSWORD = "demo-password"
WIDTHS = {"desktop": 1366, "phone": 390}
_TYPES = {"jpg": "jpeg", "png": "png"}
PAGES = {
    "annotator": ["/", "/annotation/", "project", "next", "/arena/", "/training/"],
    "reviewer": ["/", "/annotation/", "project"],
    "researcher": ["/", "/arena/leaderboard/", "/annotation/datasets/", "/training/"],
    "admin": ["/", "/training/", "/training/runs/new/", "/arena/models/"],
}


def _name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def _project(page, base: str) -> str:
    """The first project the role can open, from the projects page."""
    page.goto(f"{base}/annotation/")
    link = page.locator("a[href*='/annotation/projects/']").first
    return link.get_attribute("href") if link.count() else "/annotation/"


def _shoot(browser, base: str, role: str, width: int, label: str, out: Path, kind: str) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit], form input[type=submit]").first.click()
    page.wait_for_load_state()
    for target in PAGES[role]:
        name = target
        if target in ("project", "next"):
            project = _project(page, base).rstrip("/")
            target = project + ("/next/" if target == "next" else "/")
        page.goto(base + target)
        take = page.get_by_role("button", name="Next task")
        if name == "next" and take.count():  # a task is taken with a POST
            take.click()
        page.wait_for_load_state("networkidle")
        path = out / f"{role}-{_name(name)}-{label}.{kind}"
        quality = {"quality": 60} if kind == "jpg" else {}
        page.screenshot(path=str(path), full_page=True, type=_TYPES[kind], **quality)
        print(path, page.url.removeprefix(base))
    context.close()


def main() -> None:
    base, out = sys.argv[1].rstrip("/"), Path(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "jpg"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        for role in PAGES:
            for label, width in WIDTHS.items():
                _shoot(browser, base, role, width, label, out, kind)
        browser.close()


if __name__ == "__main__":
    main()
