"""Real processes for end-to-end tests: Celery workers (and anything else started by a test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class CeleryWorker:
    """``celery -A config worker`` in its own process group, logging to a file."""

    def __init__(self, env: dict, tmp_path: Path, extra_args: list[str]):
        self.env = env
        self.log = tmp_path / f"worker-{time.monotonic_ns()}.log"
        self.args = [
            CELERY,
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            *extra_args,
        ]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: b"ready." in self.log.read_bytes(), timeout=60, what="worker ready")

    def kill(self) -> None:
        """SIGKILL the whole worker (pool children too), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if hasattr(self, "_log_file"):
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HubServer:
    """The hub itself under gunicorn on a loopback port, against the test database."""

    def __init__(self, env: dict, tmp_path: Path, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"gunicorn-{self.port}.log"
        self.env = env
        self.args = [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import urllib.error
        import urllib.request

        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def up() -> bool:
            try:
                urllib.request.urlopen(f"{self.url}/oauth2/token/", timeout=1)
            except urllib.error.HTTPError:
                return True  # any HTTP answer means it is serving
            except OSError:
                return False
            return True

        wait_for(up, timeout=60, what="gunicorn serving")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if hasattr(self, "_log_file"):
            self._log_file.close()


class SimulatedParty:
    """``manage.py simulate_party`` as a process of its own on a free loopback port."""

    def __init__(self, args: list[str], env: dict, tmp_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"simulator-{self.port}.log"
        self.args = [
            sys.executable,
            str(ROOT / "manage.py"),
            "simulate_party",
            "--port",
            str(self.port),
            *args,
        ]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> SimulatedParty:
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.counters, timeout=60, what=f"simulator on {self.port}")
        return self

    def counters(self) -> dict | None:
        import json
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/_simulator", timeout=1) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if hasattr(self, "_log_file"):
            self._log_file.close()
