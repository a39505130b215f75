"""Real processes for end-to-end tests: Celery workers, the hub under gunicorn, simulated
parties. Each runs in its own process group and logs to a file in the test's tmp_path."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def wait_for(
    predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition", state=None
):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``,
    with ``state()`` (what the system looked like) in the message when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    described = f"; state: {state()}" if state else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{described}")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoggedProcess:
    """A subprocess in its own process group, logging to ``self.log``; subclasses give the
    command line (``args``) and say when it is ready (``ready``)."""

    name = "process"
    ready_timeout = 60.0

    def __init__(self, args: list[str], env: dict, tmp_path: Path):
        self.args = args
        self.env = env
        self.log = tmp_path / f"{self.name}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def ready(self) -> bool:
        return True

    def start(self):
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._ready_or_dead, timeout=self.ready_timeout, what=f"{self.name} ready")
        return self

    def _ready_or_dead(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.output()[-3000:]}")
        return self.ready()

    def kill(self) -> None:
        """SIGKILL the whole process group (pool children too), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self, "_log_file"):
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


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
        try:
            urllib.request.urlopen(f"{self.url}/oauth2/token/", timeout=1)
        except urllib.error.HTTPError:
            return True  # any HTTP answer means it is serving
        except OSError:
            return False
        return True


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
