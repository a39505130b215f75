"""The PostgreSQL backend's health check at most once per window, and what a connection that
breaks inside the window costs: one 503, nothing stored, and the next request served; and its
``timestamptz`` loader (psycopg's own, not Django's Python subclass)."""

import datetime as dt
import time

import httpx
import psycopg
import pytest
from django.db import connection, connections
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.utils import timezone
from psycopg.pq import Format

from aanspraak.db.postgresql.base import TIMESTAMPTZ_OID
from aanspraak.services.registry import load_registry
from confirmations.models import Confirmation
from entitlements.models import Entitlement
from tests.support.factories import REGISTRY, make_order


@pytest.fixture
def checks(monkeypatch):
    calls = []
    real = type(connections["default"]).is_usable

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(type(connections["default"]), "is_usable", counting)
    return calls


def _next_request():
    connection.health_check_done = False  # what Django does at the end of each request


@pytest.mark.django_db
def test_a_connection_checked_within_the_window_is_not_checked_again(settings, checks):
    settings.DATABASE_HEALTH_CHECK_SECONDS = 60
    connection.ensure_connection()
    connection._known_good_at = float("-inf")  # as if the last check were long ago
    _next_request()
    connection.close_if_health_check_failed()
    assert len(checks) == 1
    for _ in range(3):
        _next_request()
        connection.close_if_health_check_failed()
        assert connection.health_check_done
    assert len(checks) == 1  # known good a moment ago: no SELECT 1
    connection._known_good_at = time.monotonic() - 61  # the window has passed
    _next_request()
    connection.close_if_health_check_failed()
    assert len(checks) == 2


@pytest.mark.django_db
def test_a_window_of_zero_checks_every_request(settings, checks):
    settings.DATABASE_HEALTH_CHECK_SECONDS = 0
    connection.ensure_connection()
    for _ in range(3):
        _next_request()
        connection.close_if_health_check_failed()
    assert len(checks) == 3


def _terminate_hub_connections(db_name: str) -> int:
    """Every connection to the test database but this test's own."""
    connection.ensure_connection()
    own = connection.connection.info.backend_pid
    dsn = connection.settings_dict
    with psycopg.connect(
        host=dsn["HOST"], port=dsn["PORT"] or 5432, user=dsn["USER"], dbname="postgres"
    ) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid NOT IN (pg_backend_pid(), %s)",
            (db_name, own),
        ).fetchall()
    return len(rows)


def _confirm(server, token, index):
    body = {
        "entitlementReferenceId": "7d3e1a4c-0000-4000-8000-000000000000",
        "entitlementReceiveId": f"broken-{index}",
        "entitlementId": "7d3e1a4c-0000-4000-8000-000000000001",
        "productId": "P",
        "processedTimestamp": "2026-08-01T10:00:00Z",
        "newEntitlementStatus": "entitled",
    }
    return httpx.put(
        f"{server.url}/entitlements/confirmations",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.mark.parametrize("window", ["0", "600"])
def test_connections_killed_under_the_web_cost_at_most_a_503_each_and_lose_nothing(
    worker_env, tmp_path, window
):
    """``pg_terminate_backend`` of every connection the web holds (what a database restart
    does to them). Window 0: each request is checked first and reconnects, all 202. Window
    600: a request on a dead connection answers 503 with Retry-After and stores nothing, the
    connection is replaced, and the requests after it are served."""
    from tests.support.processes import HubServer

    load_registry(REGISTRY)
    server = HubServer({**worker_env, "DATABASE_HEALTH_CHECK_SECONDS": window}, tmp_path, workers=1)
    server.start()
    try:
        token = httpx.post(
            f"{server.url}/oauth2/token/",
            data={"grant_type": "client_credentials"},
            auth=("noord-lr", "noord-lr-secret"),
            timeout=30,
        ).json()["access_token"]
        answers = [_confirm(server, token, i) for i in range(8)]  # every thread connected
        assert {a.status_code for a in answers} == {202}
        assert _terminate_hub_connections(connection.settings_dict["NAME"]) >= 1
        answers = [_confirm(server, token, i) for i in range(8, 40)]
    finally:
        server.stop()
    codes = [a.status_code for a in answers]
    failed = [a for a in answers if a.status_code != 202]
    if window == "0":
        assert failed == []
    else:
        # at most one failure per connection that was killed (4 threads), then served again
        assert 1 <= len(failed) <= 4, codes
        assert codes[-10:] == [202] * 10
        for answer in failed:
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["status"] == 99
            assert "nothing was stored" in answer.json()["statusMessage"]
    stored = set(Confirmation.objects.values_list("receive_id", flat=True))
    accepted = {f"broken-{i}" for i, a in enumerate(answers, start=8) if a.status_code == 202}
    assert accepted | {f"broken-{i}" for i in range(8)} == stored


@pytest.mark.django_db(transaction=True)
def test_timestamps_are_read_by_psycopgs_loader_as_aware_utc_on_every_cursor(registry):
    make_order(registry, 3)
    moment = dt.datetime(2026, 10, 25, 1, 30, 0, 123456, tzinfo=dt.UTC)  # DST change
    Entitlement.objects.update(status_changed_at=moment)
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    assert not issubclass(loader, BaseTzLoader)  # not Django's pure-Python parse

    plain = list(Entitlement.objects.values_list("status_changed_at", flat=True))
    # .iterator() reads through a named (server-side) cursor: Django's other cursor path.
    named = list(Entitlement.objects.values_list("status_changed_at", flat=True).iterator(2))
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (now,) = cursor.fetchone()
    assert plain and len(named) == len(plain)
    for value in [*plain, *named]:
        assert value == moment
        assert value.tzinfo is dt.UTC
    assert now.tzinfo is dt.UTC
    assert abs(now - timezone.now()) < dt.timedelta(minutes=1)
