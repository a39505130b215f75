"""Child processes as the benchmark and the end-to-end tests run them: the hub under gunicorn,
Celery workers, loopback servers.

Each runs in its own process group, so that stopping it stops its pool children too, and
writes its stdout and stderr to a log file of its own. ``start`` returns once the process says
it is ready, or raises with the log's tail when it dies first; ``stop`` sends SIGTERM to the
group and SIGKILL after a grace period. The benchmark (``benchmarks/stack.py``) and the tests
(``tests/support/processes.py``) add the processes they need on top; this module imports
neither.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    predicate,
    timeout: float = 30.0,
    *,
    what: str = "condition",
    interval: float = 0.1,
    state=None,
):
    """Poll ``predicate`` until it returns something truthy and return that; raise
    TimeoutError after ``timeout`` seconds, with ``state()`` (what the system looked like) in
    the message when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    described = f"; state: {state()}" if state else ""
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{described}")


def answers_http(url: str) -> bool:
    """Whether a server answers ``url`` over HTTP at all: an error status counts (it serves)."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


class LoggedProcess:
    """A child process in its own process group, logging to a file in ``log_dir``.

    Subclasses give the command line and say when the process is ready (``ready``); the
    name (a class attribute, or given) names the log file and the messages."""

    name = "process"
    ready_timeout = 60.0

    def __init__(
        self, args: list[str], env: dict[str, str] | None, log_dir: Path, name: str | None = None
    ):
        if name is not None:
            self.name = name
        self.args = args
        self.env = env
        self.log = Path(log_dir) / f"{self.name}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def ready(self) -> bool:
        """Whether the process serves yet; polled by ``start``."""
        return True

    def started(self) -> None:
        """Called once the process runs, before ``start`` waits for it to be ready (a hook
        for whoever must be able to stop it even if it never gets ready)."""

    def start(self, timeout: float | None = None):
        """Start the process and wait (``timeout``, else ``ready_timeout`` seconds) until it is
        ready; raise RuntimeError with the log's tail if it exits first."""
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started()
        wait_for(
            self._ready_or_dead,
            timeout if timeout is not None else self.ready_timeout,
            what=f"{self.name} to be ready",
            interval=0.05,
        )
        return self

    def _ready_or_dead(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
        return self.ready()

    def kill(self) -> None:
        """SIGKILL the whole process group (pool children too), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it has not ended 20 s later; close the
        log. Stopping a process that has ended (or never started) does nothing more."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        if hasattr(self, "_log_file"):
            self._log_file.close()

    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        """The last ``chars`` characters the process wrote."""
        return self.output()[-chars:]

    def pids(self) -> list[int]:
        """The process and all its descendants (gunicorn's or Celery's pool children)."""
        if self.proc is None:
            return []
        found, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            try:
                children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                frontier.append(child)
        return found
