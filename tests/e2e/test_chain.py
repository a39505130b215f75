"""The chain clients end to end: the simulator's administration and usage roles, and intake
by enrollmentId through a real Celery worker that resolves the students against the
simulated administration system and then delivers to a registry on loopback."""

from __future__ import annotations

import uuid

import httpx
import pytest
from rest_framework.test import APIClient

from aanspraak.outbound import Endpoint
from aanspraak.outbound.enrollments import get_enrollment
from aanspraak.outbound.fetch import ChainCallError
from aanspraak.outbound.usage import get_contract_usage
from aanspraak.simulation.config import SimulatorConfig
from aanspraak.simulation.party import PartySimulator
from entitlements.models import EnrollmentLookup, Entitlement
from tests.support.chain_helpers import enrollment, order_by_enrollments
from tests.support.loopback import Answer, LoopbackParty
from tests.support.processes import wait_for


@pytest.fixture
def fake_hub():
    server = LoopbackParty(lambda r: Answer(202, {})).start()
    yield server
    server.stop()


@pytest.fixture
def simulator():
    started: list[PartySimulator] = []

    def start(**fields) -> PartySimulator:
        sim = PartySimulator(SimulatorConfig(delay=0.05, seed=1, **fields)).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def test_simulator_serves_enrollments_and_contract_usage(fake_hub, simulator):
    sim = simulator(
        hub_url=fake_hub.base_url,
        registry=True,
        registry_client=("noord-lr", "secret"),
        enrollments={"E-1": enrollment("E-1")},
        require_token=True,
    )
    admin = Endpoint(
        base_url=sim.base_url + "/administration",
        token_url=sim.base_url + "/oauth2/token",
        client_id="hub",
        client_secret="s",
        name="sim",
    )
    assert get_enrollment(admin, "E-1", {"orgMasterId": "110A133"}).student == {
        "userMasterIdentifier": "https://ketenid.nl/201703/e-1"
    }
    with pytest.raises(ChainCallError) as caught:
        get_enrollment(admin, "E-2", {"orgMasterId": "110A133"})
    assert caught.value.kind == "not-found"
    assert "orgMasterId=110A133" in sim.gets[0].path

    # As registry: what it received and confirmed is its usage of the contract.
    token = httpx.post(sim.base_url + "/oauth2/token").json()["access_token"]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for i, (entitlement_id, order) in enumerate(zip(ids, ["DO-1", "DO-1", "DO-2"], strict=True)):
        body = {
            "entitlementReferenceId": str(uuid.uuid4()),
            "entitlement": {
                "entitlementId": entitlement_id,
                "deliveryOrderId": order,
                "contractId": "C-7",
                "productId": "p",
                "entitlementStatus": "created" if i < 2 else "blocked",
            },
        }
        answer = httpx.put(
            sim.base_url + "/registry/entitlements",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 202
    wait_for(lambda: sim.counters.confirmations_sent == 3, timeout=10, what="confirmations")
    registry = Endpoint(
        base_url=sim.base_url + "/registry",
        token_url=sim.base_url + "/oauth2/token",
        client_id="hub",
        client_secret="s",
    )
    usages = {u.delivery_order_id: u for u in get_contract_usage(registry, "C-7")}
    assert usages["DO-1"].totals["totalEntitled"] == 2
    assert usages["DO-1"].statuses == {ids[0]: "entitled", ids[1]: "entitled"}
    assert usages["DO-2"].totals["totalBlocked"] == 1
    with pytest.raises(ChainCallError) as caught:
        get_contract_usage(registry, "C-unknown")
    assert caught.value.kind == "not-found"


def test_intake_by_enrollment_through_a_real_worker(
    registry, make_token, celery_worker_process, simulator
):
    administration = simulator(
        enrollments={
            "E-1": enrollment("E-1", eckid="https://ketenid.nl/201703/student-one"),
            "E-OLD": enrollment("E-OLD", begin="2025-08-01", end="2026-06-30"),
        },
        require_token=True,
    )
    party = registry.school_admin
    party.endpoint_base_url = administration.base_url
    party.endpoint_token_url = administration.base_url + "/oauth2/token"
    party.endpoint_client_id = "hub"
    party.endpoint_client_secret = "hub-secret"
    party.save()
    parties = LoopbackParty(lambda r: Answer(200, {})).start()
    try:
        for p in (registry.licensor, registry.portal, registry.seller):
            p.endpoint_base_url = parties.base_url
            p.save()
        celery_worker_process()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}")
        answer = client.put(
            "/deliveryorders", order_by_enrollments(["E-1", "E-OLD"]), format="json"
        )
        assert answer.status_code == 202, answer.content

        def delivered():
            return [
                b["entitlement"]
                for b in parties.bodies("/entitlements")
                if b["entitlement"].get("entitlementStatus") == "created"
            ]

        # The registry and the portal (one loopback server here) may each have it already.
        bodies = wait_for(delivered, timeout=40, what="the resolved entitlement at the registry")
        assert len({b["entitlementId"] for b in bodies}) == 1
        sent = bodies[0]
        assert sent["entitlementSpecification"]["user"] == {
            "userMasterIdentifier": "https://ketenid.nl/201703/student-one"
        }
        wait_for(
            lambda: EnrollmentLookup.objects.filter(state="failed").exists(),
            timeout=20,
            what="the ended enrollment failed",
        )
        resolved = Entitlement.objects.get(enrollment_id="E-1")
        assert str(resolved.entitlement_id) == sent["entitlementId"]
        ended = Entitlement.objects.get(enrollment_id="E-OLD")
        assert ended.enrollment_lookup.error_kind == "inactive"
        assert not ended.messages.exists() and ended.user_master_identifier is None
        # Only the resolved one ever left the hub.
        sent_ids = {b["entitlement"]["entitlementId"] for b in parties.bodies("/entitlements")}
        assert sent_ids == {str(resolved.entitlement_id)}
        assert len(administration.gets) == 2
    finally:
        parties.stop()
