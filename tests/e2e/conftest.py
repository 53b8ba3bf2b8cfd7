import shutil
from pathlib import Path

import pytest
from django.conf import settings


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
