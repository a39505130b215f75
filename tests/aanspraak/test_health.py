"""GET /healthz and GET /readyz (docs/operations.md, "Health"): real checks against the test
PostgreSQL and Redis, a closed port for a database or broker that is away, and a migration
the database lacks."""

from __future__ import annotations

import copy
import json

import pytest
from django.db import connection

from aanspraak.selectors import health
from tests.support.processes import free_port

SECRET = "s3cr3t-pw"
ALL_OK = {"database": "ok", "broker": "ok", "migrations": "ok"}


@pytest.fixture(autouse=True)
def _migrations_checked_again():
    """Each test checks the migrations itself (a process remembers only their being ok)."""
    health._migrations_ok.clear()
    yield
    health._migrations_ok.clear()


def assert_discloses_nothing(body: bytes, *secrets: str) -> None:
    text = body.decode()
    for word in ("127.0.0.1", "localhost", "postgres", *secrets):
        assert word not in text, f"{word!r} in {text}"


def test_healthz_answers_without_touching_anything(client):
    # No django_db mark: a query would raise here.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_database_broker_and_migrations_are(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": ALL_OK}


@pytest.mark.django_db
def test_readyz_is_503_with_the_database_away(client, settings, monkeypatch):
    # The configured database moved to a closed port; the test's own connection, opened
    # already, keeps the old one.
    database = copy.deepcopy(settings.DATABASES["default"])
    database.update(PORT=free_port(), PASSWORD=SECRET)  # nothing listens there
    monkeypatch.setitem(settings.DATABASES, "default", database)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unavailable: cannot connect")
    assert body["checks"]["migrations"] == "unknown: the database is unavailable"
    assert body["checks"]["broker"] == "ok"
    assert_discloses_nothing(response.content, SECRET, str(database["PORT"]))


@pytest.mark.django_db
def test_readyz_is_503_with_the_broker_away(client, settings):
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://:{SECRET}@127.0.0.1:{port}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "unavailable",
        "checks": {**ALL_OK, "broker": body["checks"]["broker"]},
    }
    assert body["checks"]["broker"].startswith("unavailable: cannot reach Redis")
    assert_discloses_nothing(response.content, SECRET, str(port), "redis://")


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_while_a_migration_is_not_applied(client):
    """A migration of this code missing from django_migrations (committed: the probe reads
    on a connection of its own) makes the hub unready until it is applied."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'entitlements' "
            "AND name = '0010_message_failed_idx' RETURNING applied"
        )
        (applied,) = cursor.fetchone()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "checks": {**ALL_OK, "migrations": "pending: 1 unapplied migrations"},
        }
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) "
                "VALUES ('entitlements', '0010_message_failed_idx', %s)",
                [applied],
            )
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"] == ALL_OK


@pytest.mark.django_db
def test_a_check_that_hangs_is_cut_off_at_the_timeout(client, settings, monkeypatch):
    """A check that does not answer in time counts as failed; the answer does not wait."""
    import threading

    release = threading.Event()

    def hanging(timeout):
        release.wait(10)
        return "ok"

    monkeypatch.setattr(health, "_broker", hanging)
    settings.HUB_HEALTH_TIMEOUT = 0.2
    try:
        response = client.get("/readyz")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "unavailable: no answer within 0.2 s"


def test_operations_paths_skip_the_api_checks(client):
    """No API-Version or body checks: a probe sending an old API-Version still gets its
    answer (the chain's API would answer 400, status 12)."""
    response = client.get("/healthz", HTTP_API_VERSION="0.9")
    assert response.status_code == 200
    assert client.get("/deliveryorders", HTTP_API_VERSION="0.9").status_code == 400


def test_probes_over_plain_http_are_not_redirected(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 301  # it may carry a token: https only


def test_only_get_and_head(client):
    assert client.head("/healthz").status_code == 200
    response = client.post("/healthz", "{}", content_type="application/json")
    assert response.status_code == 405
    assert json.loads(response.content)["statusMessage"]


def test_operations_endpoints_are_not_in_the_openapi_document():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert paths  # the chain's API is there
    assert not {"/healthz", "/readyz", "/metrics"} & set(paths)
