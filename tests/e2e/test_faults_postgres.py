"""PostgreSQL stopped and started again under load (docs/reliability.md): the test's own
cluster, the hub's migrations, gunicorn with the production configuration and a Celery worker
on it, and HTTP clients sending confirmations, reading an order and asking for tokens without
pause. The database is stopped twice (``pg_ctl stop -m fast``, then ``-m immediate``: crash
recovery at the start), each time for a few seconds.

What must hold: while it is gone every answer is a 503 StatusResponse with ``Retry-After``
(docs/api.md, "Errors"), never a 500 and never a hang past the client's timeout; once it is
back the same gunicorn processes answer 202 again by themselves; every confirmation answered
202 is stored, none answered 503 is; and the same worker applies them all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest

from tests.support.factories import REGISTRY
from tests.support.postgres import OwnPostgres
from tests.support.processes import CeleryWorker, HubServer, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

STUDENTS = 300
CLIENTS = 6
OUTAGE_SECONDS = 4
CLIENT_TIMEOUT = 15.0
T0 = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Reply:
    kind: str  # "confirm", "read", "token"
    started: float
    ended: float
    status: int | None  # None: no answer (timeout, connection error)
    receive_id: str = ""
    retry_after: str | None = None
    body_status: int | None = None
    error: str = ""


@pytest.fixture
def own_postgres():
    cluster = OwnPostgres()
    try:
        yield cluster.create()
    finally:
        cluster.remove()  # on every exit path: stopped (immediate) and deleted


def _token(url: str, client_id: str) -> str:
    answer = httpx.post(
        f"{url}/oauth2/token/",
        data={"grant_type": "client_credentials"},
        auth=(client_id, f"{client_id}-secret"),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _order(url: str, seller_token: str) -> None:
    students = [
        {"userMasterIdentifier": f"https://ketenid.nl/201703/pg{i}"} for i in range(STUDENTS)
    ]
    answer = httpx.put(
        f"{url}/deliveryorders",
        json={
            "deliveryOrderReferenceId": "pg-restart-1",
            "deliveryOrder": {
                "deliveryOrderId": "DO-PG",
                "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
                "productId": "9789001000011",
                "deliveryType": "school-students",
                "deliverySpecification": {"students": students},
                "startDate": "2026-08-01",
                "activationUntilDate": "2026-10-01",
            },
        },
        headers={"Authorization": f"Bearer {seller_token}"},
        timeout=60,
    )
    assert answer.status_code == 202, answer.text


class Load:
    """CLIENTS threads, each sending without pause: confirmations (a new receive id each),
    and every fifth request a read of the order, every twentieth a token request."""

    def __init__(self, url: str, tokens: dict[str, str], targets: list[tuple[str, str]]):
        self.url, self.tokens, self.targets = url, tokens, targets
        self.replies: list[Reply] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT * 2)

    def accepted_since(self, moment: float) -> int:
        with self.lock:
            return sum(1 for r in self.replies if r.status == 202 and r.started >= moment)

    def _run(self, client: int) -> None:
        with httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT) as http:
            n = 0
            while not self.stopping.is_set():
                n += 1
                if n % 20 == 0:
                    reply = self._call(
                        "token",
                        http.post,
                        "/oauth2/token/",
                        data={"grant_type": "client_credentials"},
                        auth=("west-dashboard", "west-dashboard-secret"),
                    )
                elif n % 5 == 0:
                    reply = self._call(
                        "read",
                        http.get,
                        "/entitlements/deliveryorder/DO-PG",
                        headers=self._bearer("west-dashboard"),
                    )
                else:
                    reference, entitlement = self.targets[(client * 7919 + n) % len(self.targets)]
                    receive_id = f"pg-{client}-{n}"
                    body = {
                        "entitlementReferenceId": reference,
                        "entitlementReceiveId": receive_id,
                        "entitlementId": entitlement,
                        "productId": "9789001000011",
                        "processedTimestamp": (T0 + dt.timedelta(seconds=n)).isoformat(),
                        "newEntitlementStatus": "entitled",
                    }
                    reply = self._call(
                        "confirm",
                        http.put,
                        "/entitlements/confirmations",
                        receive_id,
                        json=body,
                        headers=self._bearer("noord-lr"),
                    )
                with self.lock:
                    self.replies.append(reply)
                if reply.status == 503:
                    time.sleep(0.05)  # a client honouring Retry-After would wait longer

    def _bearer(self, client_id: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[client_id]}"}

    @staticmethod
    def _call(kind, method, path, receive_id: str = "", **kwargs) -> Reply:
        started = time.monotonic()
        try:
            answer = method(path, **kwargs)
            text = answer.read()
        except httpx.HTTPError as exc:
            return Reply(kind, started, time.monotonic(), None, receive_id, error=repr(exc))
        body_status = None
        if answer.status_code >= 400:
            try:
                body_status = json.loads(text).get("status")
            except ValueError:
                body_status = None
        elif kind == "read":
            try:
                json.loads(text)  # a whole JSON array, not a cut-off stream
            except ValueError as exc:
                return Reply(kind, started, time.monotonic(), None, error=f"cut off: {exc}")
        retry_after = answer.headers.get("Retry-After")
        ended = time.monotonic()
        return Reply(kind, started, ended, answer.status_code, receive_id, retry_after, body_status)


def test_postgresql_stopped_and_started_again_under_load(own_postgres, own_redis, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": own_postgres.url,
        "CELERY_BROKER_URL": own_redis.url,
        "PYTHONUNBUFFERED": "1",
        "DJANGO_PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
        "HUB_CONFIRMATION_SWEEP_INTERVAL": "1",
        "HUB_CONFIRMATION_SWEEP_AGE": "0",
    }
    own_postgres.manage(env, "migrate", "--noinput")
    registry_file = tmp_path / "registry.json"
    registry_file.write_text(json.dumps(REGISTRY))
    own_postgres.manage(env, "load_registry", str(registry_file))

    web = HubServer(env, tmp_path).start()
    # Confirmations only (-Q celery): the outbound messages' parties do not exist here.
    worker = CeleryWorker(env, tmp_path, ["-Q", "celery", "-B", "-s", str(tmp_path / "beat")])
    try:
        worker.start()
        tokens = {c: _token(web.url, c) for c in ("oost-seller", "noord-lr", "west-dashboard")}
        _order(web.url, tokens["oost-seller"])
        targets = [
            (str(reference), str(entitlement))
            for reference, entitlement in own_postgres.query(
                "SELECT m.reference_id, e.entitlement_id FROM entitlements_outboundmessage m "
                "JOIN entitlements_entitlement e ON e.id = m.entitlement_id "
                "JOIN aanspraak_party p ON p.id = m.recipient_id "
                "WHERE p.name = 'Uitgeverij Noord'"
            )
        ]
        assert len(targets) == STUDENTS
        web_pids, worker_pid = sorted(web.pids()), worker.proc.pid

        outages: list[tuple[float, float]] = []  # (stopped, starting again), monotonic
        recovered: list[float] = []  # seconds from started again to the next 202
        with Load(web.url, tokens, targets) as load:
            wait_for(lambda: load.accepted_since(0) >= 300, timeout=120, what="a warm hub")
            for mode in ("fast", "immediate"):
                own_postgres.down(mode)
                stopped = time.monotonic()
                time.sleep(OUTAGE_SECONDS)
                outages.append((stopped, time.monotonic()))
                own_postgres.up()
                back = time.monotonic()
                wait_for(lambda: load.accepted_since(back) >= 1, timeout=60, what="a 202")  # noqa: B023
                first = min(r.ended for r in load.replies if r.status == 202 and r.started >= back)
                recovered.append(first - back)
                wait_for(lambda: load.accepted_since(back) >= 200, timeout=120, what="served")  # noqa: B023
        replies = list(load.replies)

        # The same processes served throughout: nothing restarted them.
        assert sorted(web.pids()) == web_pids
        assert worker.proc.poll() is None and worker.proc.pid == worker_pid
        wait_for(
            lambda: (
                own_postgres.query(
                    "SELECT count(*) FROM confirmations_confirmation WHERE state = 'pending'"
                )[0][0]
                == 0
            ),
            timeout=120,
            interval=0.5,
            what="the backlog applied by the same worker",
        )
        stored = {
            r for (r,) in own_postgres.query("SELECT receive_id FROM confirmations_confirmation")
        }
    finally:
        worker.stop()
        web.stop()

    statuses = Counter((r.kind, r.status) for r in replies)
    unexpected = [r for r in replies if r.status not in (200, 202, 503)]
    assert not unexpected, (
        statuses,
        Counter((r.kind, r.status, r.error[:200]) for r in unexpected),
    )
    failed = [r for r in replies if r.status == 503]
    assert all(r.retry_after == "1" and r.body_status == 99 for r in failed), failed[:5]
    # Every request that ran wholly while the database was stopped was answered 503.
    for stopped, starting in outages:
        during = [r for r in replies if r.started >= stopped and r.ended <= starting]
        assert during, "no request while the database was stopped"
        assert {r.status for r in during} == {503}, Counter(r.status for r in during)
    # Before, between and after the outages the hub served again: the last answers are good.
    assert all(r.status in (200, 202) for r in replies[-CLIENTS * 10 :])
    accepted = {r.receive_id for r in replies if r.kind == "confirm" and r.status == 202}
    refused = {r.receive_id for r in replies if r.kind == "confirm" and r.status == 503}
    assert accepted <= stored, len(accepted - stored)  # every 202 stored
    assert not refused & stored, sorted(refused & stored)[:5]  # "nothing was stored"
    assert len(stored) == len(accepted)
    print(
        f"\nrequests {len(replies)}: {dict(statuses)}; outages {len(outages)} of "
        f"{OUTAGE_SECONDS} s; first 202 after the restart in "
        f"{', '.join(f'{s:.2f}' for s in recovered)} s"
    )
