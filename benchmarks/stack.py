"""What the benchmark runs: a database of its own, the hub as production runs it (gunicorn
with ``config/gunicorn.conf.py``, Celery workers, beat), the web floor under the same
gunicorn configuration, and a loopback server playing the other parties.

Every process is started in its own process group and registered, so that ``stop_all`` (run
on every exit path: normal end, exception, Ctrl-C, SIGTERM, SIGHUP) stops them all; the
database is dropped the same way.
"""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .processes import BIN, ROOT, LoggedProcess, answers_http, free_port

LOG_DIR = Path(tempfile.mkdtemp(prefix="aanspraak-bench-"))

_running: list[Process] = []
_cleanups: list = []


class Process(LoggedProcess):
    """A child process of the benchmark, logging under LOG_DIR; registered while it runs, so
    that ``stop_all`` stops it on every exit path (even before it is ready)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        super().__init__(args, env, LOG_DIR, name=name)

    def started(self) -> None:
        _running.append(self)

    def stop(self) -> None:
        super().stop()
        if self in _running:
            _running.remove(self)


class WebServer(Process):
    """gunicorn with the hub's configuration file, serving ``app`` on a loopback port."""

    def __init__(self, name: str, app: str, env: dict[str, str], workers: int | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        if workers:
            env["WEB_CONCURRENCY"] = str(workers)
        args = [str(BIN / "gunicorn"), "-c", str(ROOT / "config" / "gunicorn.conf.py"), app]
        super().__init__(name, args, env)

    def ready(self) -> bool:
        return answers_http(f"{self.url}/")

    def peak_rss_mib(self) -> float:
        """The largest peak resident set (VmHWM) of the server's worker processes."""
        peak = 0
        for pid in self.pids()[1:] or self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except OSError:
                continue
        return peak / 1024


class Worker(Process):
    """``celery -A config worker`` with ``concurrency`` prefork processes."""

    def __init__(self, env: dict[str, str], concurrency: int):
        hostname = f"bench-{concurrency}-{time.monotonic_ns()}@%h"
        args = [
            str(BIN / "celery"), "-A", "config", "worker", "--loglevel=WARNING",
            f"--concurrency={concurrency}", "--hostname", hostname,
        ]  # fmt: skip
        super().__init__(f"worker-c{concurrency}", args, env)
        self.hostname = hostname.replace("%h", socket.gethostname())

    def ready(self) -> bool:
        # Celery prints "ready." at INFO only; ask it over the broker instead.
        from celery import current_app

        replies = current_app.control.ping(destination=[self.hostname], timeout=0.5)
        return bool(replies)


class Beat(Process):
    def __init__(self, env: dict[str, str]):
        schedule = LOG_DIR / f"beat-schedule-{time.monotonic_ns()}"
        args = [
            str(BIN / "celery"), "-A", "config", "beat", "--loglevel=WARNING",
            "--schedule", str(schedule),
        ]  # fmt: skip
        super().__init__("beat", args, env)


class PartyServer(Process):
    """benchmarks/party_server.py on a loopback port."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "benchmarks.party_server", "--port", str(self.port)]
        super().__init__("party-server", args, env)

    def counts(self) -> dict[str, int]:
        import json

        with urllib.request.urlopen(f"{self.url}/_counts", timeout=5) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_counts", method="DELETE")
        urllib.request.urlopen(request, timeout=5).close()

    def ready(self) -> bool:
        try:
            self.counts()
        except OSError:
            return False
        return True


# --- the hub's environment --------------------------------------------------------------------


def production_env(database_url: str, broker_url: str) -> dict[str, str]:
    """The environment of a production hub (HUB_ENV=production with its required secrets)."""
    from cryptography.fernet import Fernet

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "HUB_", "GUNICORN_", "WEB_CONCURRENCY"))
    }
    env.update(
        HUB_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        HUB_FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        # The production default: the line per request and the workers' lines per row are
        # part of what is measured (docs/operations.md, "Logs"), in the default JSON format.
        HUB_LOG_LEVEL="INFO",
        # Plain HTTP on loopback, no proxy: no redirect to https (docs/operations.md).
        HUB_SSL_REDIRECT="off",
        PYTHONUNBUFFERED="1",
    )
    return env


# --- cleaning up on every exit path ----------------------------------------------------------


def on_exit(cleanup) -> None:
    """Run ``cleanup`` when the benchmark ends, however it ends (after the processes stop)."""
    _cleanups.append(cleanup)


def stop_all() -> None:
    """Stop every process still running, newest first, then run the registered clean-ups."""
    for process in reversed(list(_running)):
        try:
            process.stop()
        except Exception as exc:  # keep cleaning up whatever one process does
            print(f"could not stop {process.name}: {exc}", file=sys.stderr)
    while _cleanups:
        cleanup = _cleanups.pop()
        try:
            cleanup()
        except Exception as exc:
            print(f"clean-up failed: {exc}", file=sys.stderr)


def _on_signal(signum, _frame):
    # Turn a termination signal into an exception so every finally block runs; a second
    # signal during the clean-up is ignored rather than cutting it short.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def install_exit_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    atexit.register(stop_all)


# --- where the CPU goes -------------------------------------------------------------------------


def cpu_seconds_by_command() -> dict[tuple[int, str], float]:
    """CPU seconds used so far by every process on the machine, by (pid, command name)
    (``postgres``, ``gunicorn``, ``celery``, ``wrk``, ...). ``cpu_shares`` of two readings
    shows where a scenario's time went."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[tuple[int, str], float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        # utime and stime are fields 14 and 15 of proc(5); 12 and 13 after the name.
        totals[(int(stat.parent.name), name)] = (int(fields[11]) + int(fields[12])) / tick
    return totals


def cpu_seconds_of(
    before: dict[tuple[int, str], float], after: dict[tuple[int, str], float], *names: str
) -> float:
    """CPU seconds the processes named ``names`` used between two readings."""
    return sum(
        seconds - before.get(key, 0.0)
        for key, seconds in after.items()
        if key[1] in names and seconds > before.get(key, 0.0)
    )


def cpu_shares(
    before: dict[tuple[int, str], float], after: dict[tuple[int, str], float], top: int = 5
) -> str:
    """``gunicorn 61 %, postgres 27 %, ...`` of the CPU used between two readings, per
    command name. A process started in between counts whole; one that ended is missed."""
    used: dict[str, float] = {}
    for key, seconds in after.items():
        delta = seconds - before.get(key, 0.0)
        if delta > 0:
            used[key[1]] = used.get(key[1], 0.0) + delta
    total = sum(used.values()) or 1.0
    ranked = sorted(used.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{name} {100 * seconds / total:.0f} %" for name, seconds in ranked)


def machine_seconds() -> dict[str, float]:
    """The machine's CPU seconds so far, all cores together, from ``/proc/stat``: ``busy``,
    ``idle`` (with I/O wait) and ``steal`` (taken by the host from this virtual machine). Two
    readings tell whether a scenario had the machine to itself and whether it ran out of it."""
    tick = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return {
        "busy": (user + nice + system + irq + softirq) / tick,
        "idle": (idle + iowait) / tick,
        "steal": steal / tick,
    }


def machine_use(before: dict[str, float], after: dict[str, float]) -> str:
    """``busy 97 %, steal 2 %`` of the machine between two ``machine_seconds`` readings."""
    spent = {key: after[key] - before[key] for key in before}
    total = sum(spent.values()) or 1.0
    return f"busy {100 * spent['busy'] / total:.0f} %, steal {100 * spent['steal'] / total:.0f} %"
