"""The web stack that the load benchmarks measure: gunicorn on a free loopback port, a fresh
PostgreSQL database, and the CPU that processes used so far (Linux /proc)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def db_reset(pg: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def embedded_env(var: Path, **extra: str) -> dict[str, str]:
    """The environment of a stack on one machine with nothing installed: SQLite and the
    filesystem broker under `var`, no rate limit on generations, no model hub."""
    env = {
        **os.environ,
        "VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-" + "x" * 50,
        "GENERATIONS_PER_MINUTE": "0",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }
    env.setdefault("MODEL_CACHE_DIR", str(ROOT / "var" / "models"))
    return env


def generate_worker(env: dict[str, str], slots: int) -> subprocess.Popen:
    """A Celery worker on the `generate` queue as `scripts/serve.sh` starts it: one process
    with `slots` task threads, whose answers of one model are written together (stop it with
    `terminate()` and `wait()`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "generate",
         "--pool", "threads", "--concurrency", str(slots), "--loglevel", "WARNING"],
        cwd=ROOT, env={**env, "GENERATION_BATCH_SIZE": str(slots)},
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    worker_class: str
    workers: int
    threads: int
    port: int = 0
    timeout_s: int = 60
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        plural = "s" if self.workers != 1 else ""
        return f"gunicorn {self.worker_class}, {self.workers} worker{plural}{threads}"

    def start(self, env: dict[str, str], var_dir: Path) -> None:
        self.port = free_port()
        self.log = var_dir / f"gunicorn-{self.worker_class}.log"
        cmd = [
            str(BIN / "gunicorn"), "config.wsgi",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", self.worker_class,
            "--threads", str(self.threads if self.worker_class == "gthread" else 1),
            "--keep-alive", "5",
            "--timeout", str(self.timeout_s),
            "--log-level", "warning",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    # Touch every worker once so that imports and connections are warm.
                    for _ in range(4 * self.workers):
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                        conn.request("GET", "/healthz")
                        conn.getresponse().read()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /healthz within 60 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (the state is the first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds so far of every PostgreSQL process on this machine (backends, writers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                total += process_cpu_s(int(entry.name))
        except OSError:  # a process that ended meanwhile
            pass
    return total


def parent_pid(pid: int) -> int:
    try:
        return int(proc_stat(pid)[1])
    except (OSError, ValueError, IndexError):
        return -1


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
