"""A real Celery worker in a child process, on the same database and broker as the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def database_url_for(settings_dict: dict) -> str:
    """The DATABASE_URL of the test database this process is connected to."""
    if "sqlite" in settings_dict["ENGINE"]:
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class WorkerProcess:
    def __init__(
        self,
        *,
        database_url: str,
        queues: str = "default,generate,gpu",
        env: dict[str, str] | None = None,
    ):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        }
        self.queues = queues
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90, *, purge: bool = True) -> WorkerProcess:
        """Start and wait until ready. `purge=False` keeps what waits in the queues (a worker
        that takes over from a dead one)."""
        if purge:
            # Forget messages left by earlier runs: they name rows of another database.
            subprocess.run(
                [sys.executable, "-m", "celery", "-A", "config", "purge", "-f", "-Q", self.queues],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                timeout=60,
            )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queues,
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(" ready." in line for line in self.lines):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("The Celery worker did not start:\n" + "".join(self.lines[-40:]))

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost machine would: no clean-up runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def settle(self, queue: str, timeout: float = 120) -> None:
        """Wait until the worker has taken every message waiting on `queue`: messages that
        earlier tests published for rows long gone (and, on SQLite, for primary keys a later
        test reuses). A marker task goes to the back of the queue; once it has run, nothing
        sent before it is left."""
        from config.celery import app

        result_id = app.send_task("celery.accumulate", args=["settle"], queue=queue).id
        wait_for(
            lambda: any(result_id in line and "succeeded" in line for line in self.lines),
            timeout=timeout,
            interval=0.1,
        )

    def log(self) -> str:
        return "".join(self.lines[-60:])


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2):
    """Poll until predicate() returns something truthy; return it, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")
