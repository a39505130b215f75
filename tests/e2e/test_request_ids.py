"""Following one request from the web to a real Celery worker by its X-Request-ID
(docs/operations.md, "Logs"): the worker's stderr holds JSON lines with the same request_id,
for the confirmation it applied and for the messages of an order it delivered."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings

from confirmations.services.wake import WAKE_KEY
from tests.entitlements.test_intake import order_body
from tests.support.confirm_helpers import licensor_body, request_to
from tests.support.factories import make_order
from tests.support.loopback import LoopbackParty, point_party_at
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e

JSON_LOGS = {"HUB_LOG_FORMAT": "json", "HUB_LOG_LEVEL": "INFO"}


@pytest.fixture
def clean_wake():
    # A wake-up key left by another test would make the first request skip its wake-up.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(WAKE_KEY)


def json_lines(worker) -> list[dict]:
    """The worker's JSON log lines (its output also holds Celery's plain start-up banner)."""
    lines = []
    for line in worker.output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def lines_with(worker, message: str, request_id: str) -> list[dict]:
    return [
        line
        for line in json_lines(worker)
        if line["message"] == message and line.get("request_id") == request_id
    ]


def test_a_confirmation_is_followed_to_the_worker_by_its_request_id(
    registry, auth_client, celery_worker_process, clean_wake
):
    worker = celery_worker_process(env=JSON_LOGS)
    entitlement = make_order(registry, 1).entitlements.get()
    body = licensor_body(request_to(entitlement, registry.licensor), "entitled")
    response = auth_client("noord-lr").put(
        "/entitlements/confirmations", body, format="json", HTTP_X_REQUEST_ID="abc-123"
    )
    assert response.status_code == 202 and response["X-Request-ID"] == "abc-123"

    [line] = wait_for(
        lambda: lines_with(worker, "confirmation decided", "abc-123"),
        timeout=30,
        what="the worker's line for abc-123",
    )
    assert line["level"] == "INFO"
    assert line["outcome"] == "applied"
    assert line["receive_id"] == body["entitlementReceiveId"]
    # Every line the worker wrote through logging is JSON, Celery's own included.
    assert any("ready." in other["message"] for other in json_lines(worker))


def test_an_orders_delivery_is_followed_to_the_worker_by_its_request_id(
    registry, auth_client, celery_worker_process, clean_wake
):
    server = LoopbackParty().start()
    try:
        for party in (registry.licensor, registry.portal, registry.seller):
            point_party_at(party, server)
        worker = celery_worker_process(env=JSON_LOGS)
        response = auth_client("oost-seller").put(
            "/deliveryorders", order_body(3), format="json", HTTP_X_REQUEST_ID="order-abc-9"
        )
        assert response.status_code == 202

        # Three students: to the licensor and the portal each, and the seller's confirmation.
        delivered = wait_for(
            lambda: (
                (lines := lines_with(worker, "message delivered", "order-abc-9"))
                and len(lines) == 7
                and lines
            ),
            timeout=60,
            what="seven delivered lines for order-abc-9",
        )
    finally:
        server.stop()
    assert {line["level"] for line in delivered} == {"INFO"}
    assert len({line["reference_id"] for line in delivered}) == 7
    assert len(server.received) == 7


def test_gunicorn_writes_one_json_line_per_request_to_stderr(hub_server):
    """Under the production server (gunicorn, threads): the header over real HTTP, and the
    web process's line in its output."""
    import httpx

    answer = httpx.get(
        f"{hub_server.url}/no/such/thing", headers={"X-Request-ID": "live-1"}, timeout=10
    )
    assert answer.status_code == 404 and answer.headers["X-Request-ID"] == "live-1"
    fresh = httpx.get(f"{hub_server.url}/no/such/thing", timeout=10).headers["X-Request-ID"]

    def request_lines():
        return [
            line
            for line in json_lines(hub_server)
            if line["logger"] == "aanspraak.requests" and line["request_id"] in ("live-1", fresh)
        ]

    lines = wait_for(lambda: len(request_lines()) == 2 and request_lines(), what="two lines")
    assert [(line["request_id"], line["status"], line["path"]) for line in lines] == [
        ("live-1", 404, "/no/such/thing"),
        (fresh, 404, "/no/such/thing"),
    ]
