"""A web server in a child process: waiting until it answers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, *, warm: str = "") -> None:
    """Wait until `url` answers /healthz (failing with the server's log if it exits or never
    answers); then GET `warm` a few times, so that every worker has loaded its URLs and views
    and start-up is not mistaken for a slow answer."""
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gunicorn exited:\n" + log.read_text()[-3000:]
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                for _ in range(8 if warm else 0):
                    requests.get(url + warm, timeout=30)
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail("gunicorn did not answer /healthz:\n" + log.read_text()[-3000:])
