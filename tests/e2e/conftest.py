import shutil
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

# A page that waits on the live server and on a worker may take a while on a busy 2-core machine:
# assertions wait up to 20 s for what they expect instead of Playwright's 5 s.
expect.set_options(timeout=20_000)


def screenshots_folder() -> Path:
    """Screenshots go under this run's VAR_DIR (var/test-sqlite/screenshots in `make test`):
    pytest-playwright empties its own test-results folder at every session start."""
    return Path(settings.VAR_DIR) / "screenshots"


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromium") is None:
        skip = pytest.mark.skip(reason="Debian's chromium is not installed")
        for item in items:
            item.add_marker(skip)
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot for a person to look at."""
    folder = screenshots_folder()
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(autouse=True)
def _no_csp_violations(request):
    """Every page a browser test opens through `page` passes the Content-Security-Policy:
    Chromium reports each refused script, style or handler on the console."""
    if "page" not in request.fixturenames:
        yield
        return
    page = request.getfixturevalue("page")
    refused = []

    def listen(message):
        if "Content Security Policy" in message.text:
            refused.append(f"{page.url}: {message.text}")

    page.on("console", listen)
    yield
    assert not refused, "\n".join(refused)
