import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromium") is None:
        skip = pytest.mark.skip(reason="Debian's chromium is not installed")
        for item in items:
            item.add_marker(skip)
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under test-results/screenshots/ for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
