"""The whole loop, end to end, with every process real: the hub under gunicorn on the test
PostgreSQL, a Celery worker (with beat) on Redis, and simulated parties on loopback.

intake → Entitlement requests delivered → confirmations and activations →
``GET /entitlements/deliveryorder/{id}`` shows the result.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter

import httpx
import pytest

from aanspraak.services.registry import load_registry
from confirmations.models import Confirmation
from entitlements.models import DeliveryAttempt, OutboundMessage, StatusEvent
from tests.support.factories import REGISTRY
from tests.support.processes import SimulatedParty, wait_for

# Fast retries and sweeps, so failures heal within the test's time.
FAST = {
    "HUB_RETRY_BASE_SECONDS": "0.2",
    "HUB_RETRY_MAX_DELAY_SECONDS": "1",
    "HUB_OUTBOUND_SWEEP_SECONDS": "0.5",
    "HUB_CONFIRMATION_SWEEP_INTERVAL": "1",
    "HUB_CONFIRMATION_SWEEP_AGE": "1",
}
STUDENTS = 20


@pytest.fixture
def chain(worker_env, tmp_path, hub_server, celery_worker_process):
    """Start the parties and a worker; returns a function that loads the registry with the
    simulators' ports and returns them."""
    started: list[SimulatedParty] = []

    def start(fail_share: float = 0.0, licensed_share: float = 0.0):
        common = ["--hub", hub_server.url, "--delay", "0.1", "--seed", "7"]
        failing = ["--fail-share", str(fail_share)]
        registry = SimulatedParty(
            [
                *common,
                *failing,
                "--registry",
                "--registry-client",
                "noord-lr:noord-lr-secret",
                "--licensed-share",
                str(licensed_share),
            ],
            worker_env,
            tmp_path,
        ).start()
        portal = SimulatedParty(
            [*common, *failing, "--portal", "portal-zuid", "--portal-client",
             "zuid-portal:zuid-portal-secret"],
            worker_env,
            tmp_path,
        ).start()  # fmt: skip
        seller = SimulatedParty([*common, *failing, "--seller"], worker_env, tmp_path).start()
        started.extend([registry, portal, seller])
        data = copy.deepcopy(REGISTRY)
        urls = {
            "Uitgeverij Noord": registry.url,
            "Portal Zuid": portal.url,
            "Boekhandel Oost": seller.url,
        }
        for party in data["parties"]:
            if party["name"] in urls:
                party["endpoint"] = {"baseUrl": urls[party["name"]]}
        load_registry(data)
        celery_worker_process(["-B", "--schedule", str(tmp_path / "beat-schedule")], env=FAST)
        return registry, portal, seller

    yield start
    for party in started:
        party.stop()


def token(hub: str, client_id: str) -> str:
    response = httpx.post(
        f"{hub}/oauth2/token/",
        data={"grant_type": "client_credentials"},
        auth=(client_id, f"{client_id}-secret"),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def put_order(hub: str, seller_token: str, order_id: str, **overrides) -> httpx.Response:
    order = {
        "deliveryOrderId": order_id,
        "contractId": "C-E2E",
        "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
        "productId": "9789001000011",
        "deliveryType": "school-students",
        "deliverySpecification": {
            "students": [
                {"userMasterIdentifier": f"https://ketenid.nl/201703/e2e{i:03d}"}
                for i in range(STUDENTS)
            ]
        },
        "portals": ["portal-zuid"],
        "startDate": "2026-08-01",
        "activationUntilDate": "2026-10-01",
        "expirationDate": "2027-07-31",
        "status": "ordered",
    }
    order.update(overrides)
    return httpx.put(
        f"{hub}/deliveryorders",
        json={"deliveryOrderReferenceId": str(uuid.uuid4()), "deliveryOrder": order},
        headers={"Authorization": f"Bearer {seller_token}"},
        timeout=60,
    )


def read_order(hub: str, reader_token: str, order_id: str) -> list[dict]:
    response = httpx.get(
        f"{hub}/entitlements/deliveryorder/{order_id}",
        headers={"Authorization": f"Bearer {reader_token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def summary(entitlements: list[dict]) -> tuple[Counter, Counter]:
    statuses = Counter(e["entitlementStatus"] for e in entitlements)
    urls = Counter(u["urlStatus"] for e in entitlements for u in e.get("urlStatuses", []))
    return statuses, urls


def assert_each_confirmation_applied_once():
    """Every status change has exactly one event, caused by one applied confirmation."""
    events = StatusEvent.objects.filter(cause__in=["confirmation", "activation"])
    per_cause = Counter((e.entitlement_id, e.portal_id, e.cause_pk) for e in events)
    assert per_cause and max(per_cause.values()) == 1
    applied = set(Confirmation.objects.filter(state="applied").values_list("pk", flat=True))
    assert {cause for _, _, cause in per_cause} <= applied
    assert not Confirmation.objects.filter(state="pending").exists()


def hub_state() -> dict:
    """What a timed-out wait should show: where the order's rows are stuck."""
    from django.db.models import Count

    def counts(queryset, *fields):
        return {
            "/".join(str(row[f]) for f in fields): row["n"]
            for row in queryset.values(*fields).annotate(n=Count("pk"))
        }

    return {
        "messages": counts(OutboundMessage.objects.all(), "kind", "state", "attempt_count"),
        "confirmations": counts(Confirmation.objects.all(), "kind", "state"),
        "reasons": list(
            Confirmation.objects.exclude(reason="").values_list("reason", flat=True)[:5]
        ),
        "events": StatusEvent.objects.count(),
    }


def test_order_to_entitled_and_processed(chain, hub_server):
    chain()
    seller = token(hub_server.url, "oost-seller")
    assert put_order(hub_server.url, seller, "E2E-1").status_code == 202

    dashboard = token(hub_server.url, "west-dashboard")

    def settled():
        statuses, urls = summary(read_order(hub_server.url, dashboard, "E2E-1"))
        # The messages are waited for too: a drain records its batch once every answer is in
        # (or, past its lease, another drain's), so the confirmations may be applied first.
        return (
            statuses == Counter(entitled=STUDENTS)
            and urls == Counter(processed=STUDENTS)
            and not OutboundMessage.objects.exclude(state="delivered").exists()
        )

    wait_for(
        settled,
        timeout=90,
        interval=0.5,
        what="order entitled and processed, every message delivered",
        state=hub_state,
    )
    assert_each_confirmation_applied_once()
    assert Confirmation.objects.filter(state="applied").count() == 2 * STUDENTS


def test_with_30_percent_of_deliveries_failing_everything_arrives_once(chain, hub_server):
    registry, portal, seller_party = chain(fail_share=0.3, licensed_share=0.25)
    seller = token(hub_server.url, "oost-seller")
    assert put_order(hub_server.url, seller, "E2E-2").status_code == 202

    def settled():
        statuses, urls = summary(read_order(hub_server.url, seller, "E2E-2"))
        return (
            statuses["created"] == 0
            and sum(statuses.values()) == STUDENTS
            and urls == Counter(processed=STUDENTS)
            and not OutboundMessage.objects.exclude(state="delivered").exists()
        )

    wait_for(
        settled, timeout=120, interval=0.5, what="order settled despite failures", state=hub_state
    )
    # Failures happened and were retried.
    assert DeliveryAttempt.objects.filter(http_status=503).exists()
    assert registry.counters()["failed_on_purpose"] + portal.counters()["failed_on_purpose"] > 0
    assert seller_party.counters()["seller_confirmations"] >= 1
    statuses, _ = summary(read_order(hub_server.url, seller, "E2E-2"))
    assert statuses["licensed"] > 0 and statuses["entitled"] > 0
    assert_each_confirmation_applied_once()


def test_cancellation_of_a_half_licensed_order(chain, hub_server):
    chain(licensed_share=0.5)
    seller = token(hub_server.url, "oost-seller")
    assert put_order(hub_server.url, seller, "E2E-3").status_code == 202

    def all_confirmed():
        statuses, urls = summary(read_order(hub_server.url, seller, "E2E-3"))
        return statuses["created"] == 0 and urls == Counter(processed=STUDENTS)

    wait_for(all_confirmed, timeout=90, interval=0.5, what="order confirmed")
    # Let the activations land too (the share is chosen by entitlementId, deterministic).
    wait_for(
        lambda: not Confirmation.objects.filter(state="pending").exists(),
        timeout=30,
        what="no pending confirmations",
    )
    before, _ = summary(read_order(hub_server.url, seller, "E2E-3"))
    licensed = before["licensed"]
    assert 0 < licensed < STUDENTS

    response = put_order(hub_server.url, seller, "E2E-3", status="cancelled", endDate="2026-09-15")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["cancelledQuantity"] == STUDENTS - licensed
    assert body["licensedQuantity"] == licensed

    def cancelled():
        entitlements = read_order(hub_server.url, seller, "E2E-3")
        statuses, urls = summary(entitlements)
        return (
            statuses == Counter(licensed=licensed, cancelled=STUDENTS - licensed)
            and urls["cancelled"] == STUDENTS - licensed
            and all(
                e.get("endDate") == "2026-09-15"
                for e in entitlements
                if e["entitlementStatus"] == "cancelled"
            )
        )

    wait_for(cancelled, timeout=90, interval=0.5, what="unlicensed entitlements cancelled")
    assert_each_confirmation_applied_once()
