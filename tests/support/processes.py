"""Real processes for end-to-end tests: Celery workers, the hub under gunicorn, simulated
parties. Each runs in its own process group and logs to a file in the test's tmp_path.

The runner itself (start, wait until ready, stop with SIGTERM then SIGKILL) is the
benchmark's, ``benchmarks/processes.py``: the tests and ``make bench`` start the same
processes the same way (tests may import from ``benchmarks``; that module imports nothing
from ``tests``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.processes import BIN, ROOT, LoggedProcess, answers_http, free_port, wait_for

__all__ = [
    "BIN",
    "ROOT",
    "CeleryWorker",
    "HubServer",
    "LoggedProcess",
    "SimulatedParty",
    "free_port",
    "wait_for",
]


class CeleryWorker(LoggedProcess):
    """``celery -A config worker``."""

    name = "worker"

    def __init__(self, env: dict, tmp_path: Path, extra_args: list[str]):
        hostname = f"test-{os.getpid()}-{time.monotonic_ns()}@%h"
        args = [
            str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2",
            "--without-gossip", "--without-mingle", "--hostname", hostname, *extra_args,
        ]  # fmt: skip
        super().__init__(args, env, tmp_path)

    def ready(self) -> bool:
        return b"ready." in self.log.read_bytes()


class HubServer(LoggedProcess):
    """The hub itself under gunicorn on a loopback port, against the test database."""

    name = "gunicorn"

    def __init__(self, env: dict, tmp_path: Path, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The production configuration file, on a port of the test's own.
        args = [
            str(BIN / "gunicorn"),
            "-c",
            str(ROOT / "config" / "gunicorn.conf.py"),
            "config.wsgi",
        ]
        env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": "4",
            "GUNICORN_ACCESS_LOG": "-",
        }
        super().__init__(args, env, tmp_path)

    def ready(self) -> bool:
        return answers_http(f"{self.url}/oauth2/token/")


class SimulatedParty(LoggedProcess):
    """``manage.py simulate_party`` on a free loopback port."""

    name = "simulator"

    def __init__(self, args: list[str], env: dict, tmp_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        manage = [sys.executable, str(ROOT / "manage.py"), "simulate_party"]
        super().__init__([*manage, "--port", str(self.port), *args], env, tmp_path)

    def counters(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.url}/_simulator", timeout=1) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def ready(self) -> bool:
        return self.counters() is not None


def sweeping_worker(celery_worker_process, own_redis, tmp_path, **env):
    """A Celery worker on ``own_redis`` with beat inside, sweeping pending confirmations
    every second (it re-wakes the workers after a lost wake-up)."""
    return celery_worker_process(
        extra_args=["-B", "-s", str(tmp_path / "beat-schedule")],
        env={
            "CELERY_BROKER_URL": own_redis.url,
            "HUB_CONFIRMATION_SWEEP_INTERVAL": "1",
            "HUB_CONFIRMATION_SWEEP_AGE": "0",
            **env,
        },
    )
