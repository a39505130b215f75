"""A real Celery worker (with embedded beat for the retry sweep) delivers an order's
messages to a loopback party that fails 30 % of the requests."""

from __future__ import annotations

import random
import threading
import uuid

import pytest
from rest_framework.test import APIClient

from entitlements.models import DeliveryAttempt, EntitlementUrlStatus, OutboundMessage
from tests.support.loopback import Answer, LoopbackParty
from tests.support.processes import wait_for


@pytest.fixture
def flaky_party():
    rng = random.Random(5)
    lock = threading.Lock()

    def answer(received):
        with lock:
            failing = rng.random() < 0.3
        return Answer(503) if failing else Answer(200)

    server = LoopbackParty(answer).start()
    yield server
    server.stop()


def test_worker_drains_an_order_with_30_percent_failures(
    registry, make_token, celery_worker_process, flaky_party, tmp_path
):
    for party in (registry.licensor, registry.portal, registry.seller):
        party.endpoint_base_url = flaky_party.base_url
        party.save()
    celery_worker_process(
        extra_args=["-B", "--schedule", str(tmp_path / "beat-schedule")],
        env={
            "HUB_RETRY_BASE_SECONDS": "0.05",
            "HUB_RETRY_MAX_DELAY_SECONDS": "0.3",
            "HUB_OUTBOUND_SWEEP_SECONDS": "0.5",
        },
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}")
    body = {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": "DO-worker",
            "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
            "productId": "9789001000011",
            "deliveryType": "school-students",
            "deliverySpecification": {
                "students": [
                    {"userMasterIdentifier": f"https://ketenid.nl/201703/w{i}"} for i in range(40)
                ]
            },
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
        },
    }
    assert client.put("/deliveryorders", body, format="json").status_code == 202
    total = OutboundMessage.objects.count()
    assert total == 81  # 40 to the licensor, 40 to the portal, 1 confirmation

    wait_for(
        lambda: OutboundMessage.objects.filter(state="delivered").count() == total,
        timeout=90,
        interval=0.5,
        what="every message delivered",
    )
    assert not OutboundMessage.objects.exclude(state="delivered").exists()
    attempts = DeliveryAttempt.objects.all()
    assert attempts.filter(outcome="retry").exists()
    assert attempts.count() == len(flaky_party.received)
    assert attempts.filter(outcome="delivered").count() == total
    assert set(EntitlementUrlStatus.objects.values_list("status", flat=True)) == {"initialized"}
    confirmations = flaky_party.bodies("/deliveryorders/confirmations")
    assert confirmations and confirmations[-1]["deliveryOrderId"] == "DO-worker"
