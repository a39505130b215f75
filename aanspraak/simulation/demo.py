"""The embedded-default demo (``manage.py demo``, the README's first command).

Sets up a database with the demo registry and an admin login, then runs the whole loop on
this machine: the hub's web process, a Celery worker with beat (filesystem broker, no outside
service), and three simulated parties (a licence registry, a portal and a seller). It places
a demo delivery order through the real API and shows its entitlements reach ``entitled`` and
``processed``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from aanspraak.services.registry import load_registry, read_registry_file

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_FILE = ROOT / "aanspraak" / "simulation" / "demo-registry.yaml"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SELLER_CLIENT = ("demo-seller", "demo-seller-secret")
STUDENTS = 25


@dataclass
class DemoLogin:
    username: str
    password: str


def prepare() -> DemoLogin:
    """Migrate, load the demo registry and (re)set the admin login."""
    call_command("migrate", verbosity=0)
    load_registry(read_registry_file(REGISTRY_FILE))
    password = secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(
        username="admin", defaults={"email": "admin@example.org"}
    )
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    return DemoLogin("admin", password)


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def start_processes(port: int) -> list[subprocess.Popen]:
    """The web process, a worker with beat, and the simulated parties; each logs to a file in
    ``HUB_DATA_DIR/logs/``."""
    hub = f"http://127.0.0.1:{port}"
    data = Path(settings.HUB_DATA_DIR)
    celery = str(Path(sys.executable).with_name("celery"))
    commands = [
        _manage("runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"),
        [
            celery, "-A", "config", "worker", "-B", "--loglevel=WARNING", "--concurrency=2",
            "--schedule", str(data / "celerybeat-schedule"),
        ],
        _manage(
            "simulate_party", "--port", "9001", "--hub", hub, "--registry",
            "--registry-client", "noord-lr:noord-lr-secret", "--licensed-share", "0.3",
        ),
        _manage(
            "simulate_party", "--port", "9002", "--hub", hub, "--portal", "portal-zuid",
            "--portal-client", "zuid-portal:zuid-portal-secret",
        ),
        _manage("simulate_party", "--port", "9003", "--hub", hub, "--seller"),
    ]  # fmt: skip
    names = ["web", "worker", "registry", "portal", "seller"]
    # Plain-text logs for people reading the files (docs/operations.md, "Logs"); the worker
    # logs warnings only, as its --loglevel says (the hub's logging takes HUB_LOG_LEVEL).
    text = {**os.environ, "HUB_LOG_FORMAT": "text"}
    envs = [text, {**text, "HUB_LOG_LEVEL": "WARNING"}, text, text, text]
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for name, cmd, env in zip(names, commands, envs, strict=True):
        with (logs / f"{name}.log").open("ab") as log:
            processes.append(
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return processes


def log_dir() -> Path:
    return Path(settings.HUB_DATA_DIR) / "logs"


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(proc.pid, sig)


def stop_processes(processes: list[subprocess.Popen], grace: float = 15.0) -> None:
    """Stop every child with its own children (each runs in a process group of its own):
    SIGTERM to every group, ``grace`` seconds to finish, then SIGKILL.

    Once started, the cleanup runs to its end: further SIGINT, SIGTERM or SIGHUP are ignored
    until it is done (a second signal used to interrupt the wait and leave the worker
    running), and stopping what has stopped already does nothing."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        for proc in processes:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in processes:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            _signal_group(proc, signal.SIGKILL)  # members the group's leader left behind
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_on_termination() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, so the demo cleans up its
    children however it is stopped (Ctrl-C, a closed terminal, a process manager, a
    time-out). The first signal starts the cleanup and the next ones are ignored: ``make``
    and ``timeout`` pass a signal on, so two arrive together, and the second used to cut the
    cleanup short before it had begun."""

    def interrupt(signum, frame):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in STOP_SIGNALS:
        signal.signal(sig, interrupt)


def wait_for_hub(hub: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{hub}/api/schema/", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"the hub did not start on {hub}")


def seller_token(hub: str) -> str:
    response = httpx.post(
        f"{hub}/oauth2/token/",
        data={"grant_type": "client_credentials"},
        auth=SELLER_CLIENT,
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def place_demo_order(hub: str, token: str) -> str:
    """PUT a delivery order of STUDENTS students through the API; returns its id."""
    order_id = f"DEMO-{uuid.uuid4().hex[:6].upper()}"
    body = {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": order_id,
            "contractId": "DEMO-CONTRACT",
            "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
            "productId": "9789001000011",
            "deliveryType": "school-students",
            "deliverySpecification": {
                "students": [
                    {"userMasterIdentifier": f"https://ketenid.nl/201703/demo{i:04d}"}
                    for i in range(STUDENTS)
                ]
            },
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
            "expirationDate": "2027-07-31",
            "status": "ordered",
        },
    }
    response = httpx.put(
        f"{hub}/deliveryorders",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    response.raise_for_status()
    return order_id


def order_summary(hub: str, token: str, order_id: str) -> tuple[Counter, Counter]:
    """Counts of entitlement statuses and URL statuses, read through the API."""
    response = httpx.get(
        f"{hub}/entitlements/deliveryorder/{order_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    response.raise_for_status()
    entitlements = response.json()
    statuses = Counter(e["entitlementStatus"] for e in entitlements)
    urls = Counter(u["urlStatus"] for e in entitlements for u in e.get("urlStatuses", []))
    return statuses, urls


def settled(statuses: Counter, urls: Counter) -> bool:
    """Every entitlement confirmed by the registry and every URL processed by the portal."""
    return (
        sum(statuses.values()) == STUDENTS
        and statuses["created"] == 0
        and sum(urls.values()) == STUDENTS
        and urls["processed"] == STUDENTS
    )
