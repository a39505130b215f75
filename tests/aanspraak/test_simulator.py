"""The party simulator against a recording fake hub on loopback."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid

import httpx
import pytest

from aanspraak.simulation.config import SimulatorConfig
from aanspraak.simulation.party import PartySimulator
from entitlements import outbox
from entitlements.models import OutboundMessage
from tests.support.factories import make_order
from tests.support.loopback import Answer, LoopbackParty
from tests.support.processes import ROOT, wait_for

RFC3339_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture
def hub():
    """A fake hub that records confirmations and activations (202) and issues tokens."""
    server = LoopbackParty(lambda r: Answer(202, {}))
    server.require_token = True
    server.start()
    yield server
    server.stop()


@pytest.fixture
def simulator(hub):
    started: list[PartySimulator] = []

    def start(**overrides) -> PartySimulator:
        config = SimulatorConfig(
            hub_url=hub.base_url,
            registry=True,
            portal_id="portal-zuid",
            seller=True,
            registry_client=("noord-lr", "noord-lr-secret"),
            portal_client=("zuid-portal", "zuid-portal-secret"),
            delay=0.05,
            seed=1,
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        sim = PartySimulator(config).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def request_body(status="created", url_status=None, portal="portal-zuid", code=False):
    entitlement_id = str(uuid.uuid4())
    spec = {"school": {"organisationMasterIdentifier": "110A133"}}
    if code:
        spec["activationCode"] = "ABCD-EFGH-JKMN-PQRS"
    else:
        spec["user"] = {"userMasterIdentifier": "https://ketenid.nl/201703/x"}
    return {
        "entitlementReferenceId": str(uuid.uuid4()),
        "entitlement": {
            "entitlementId": entitlement_id,
            "deliveryOrderId": "DO-1",
            "productId": "9789001000011",
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
            "entitlementType": "school-activationcode" if code else "school-student",
            "entitlementSpecification": spec,
            "entitlementStatus": status,
            "urlStatuses": [{"portal": portal, "urlStatus": url_status or "uninitialized"}],
        },
    }


def confirmations(hub):
    return hub.bodies("/entitlements/confirmations")


def test_registry_confirms_entitled_and_reports_activation(hub, simulator):
    sim = simulator(licensed_share=1.0)
    body = request_body(code=True)
    response = httpx.put(f"{sim.base_url}/registry/entitlements", json=body)
    assert response.status_code == 202
    wait_for(lambda: confirmations(hub) and hub.bodies("/usage/activation"), what="answers")
    (confirmation,) = confirmations(hub)
    assert confirmation["entitlementReferenceId"] == body["entitlementReferenceId"]
    assert confirmation["entitlementId"] == body["entitlement"]["entitlementId"]
    assert confirmation["productId"] == "9789001000011"
    assert confirmation["newEntitlementStatus"] == "entitled"
    assert "newUrlStatus" not in confirmation
    uuid.UUID(confirmation["entitlementReceiveId"])
    assert re.fullmatch(RFC3339_Z, confirmation["processedTimestamp"])
    (activation,) = hub.bodies("/usage/activation")
    assert activation["entitlementId"] == body["entitlement"]["entitlementId"]
    assert activation["entitlementType"] == "school-activationcode"
    assert activation["school"] == {"organisationMasterIdentifier": "110A133"}
    assert activation["user"]["userMasterIdentifier"].startswith("https://ketenid.nl/")
    uuid.UUID(activation["initialActivationReferenceId"])
    assert re.fullmatch(RFC3339_Z, activation["activationTimestamp"])
    # Its token came from the hub's token endpoint with the registry's own credentials.
    assert hub.token_requests
    assert hub.basic_credentials(hub.token_requests[0]) == ("noord-lr", "noord-lr-secret")
    assert hub.token_requests[0].path == "/oauth2/token/"
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in hub.received)


def test_portal_confirms_processed_and_cancel_proposals_are_confirmed(hub, simulator):
    sim = simulator()
    initialized = request_body(url_status="initialized")
    cancel = request_body(status="created", url_status="cancelled")
    registry_cancel = request_body(status="cancelled")
    assert httpx.put(f"{sim.base_url}/portal/entitlements", json=initialized).status_code == 202
    assert httpx.put(f"{sim.base_url}/portal/entitlements", json=cancel).status_code == 202
    assert (
        httpx.put(f"{sim.base_url}/registry/entitlements", json=registry_cancel).status_code == 202
    )
    wait_for(lambda: len(confirmations(hub)) == 3, what="three confirmations")
    by_ref = {c["entitlementReferenceId"]: c for c in confirmations(hub)}
    assert by_ref[initialized["entitlementReferenceId"]]["newUrlStatus"] == {
        "portal": "portal-zuid",
        "urlStatus": "processed",
    }
    assert by_ref[cancel["entitlementReferenceId"]]["newUrlStatus"]["urlStatus"] == "cancelled"
    assert by_ref[registry_cancel["entitlementReferenceId"]]["newEntitlementStatus"] == "cancelled"
    portal_tokens = [r for r in hub.token_requests if hub.basic_credentials(r)[0] == "zuid-portal"]
    assert portal_tokens


def test_licensed_share_zero_sends_no_activation(hub, simulator):
    sim = simulator(licensed_share=0.0)
    httpx.put(f"{sim.base_url}/registry/entitlements", json=request_body())
    wait_for(lambda: confirmations(hub), what="confirmation")
    sim._stopping.wait(0.3)
    assert hub.bodies("/usage/activation") == []


def test_repeated_reference_is_confirmed_once(hub, simulator):
    sim = simulator()
    body = request_body()
    for _ in range(3):
        assert httpx.put(f"{sim.base_url}/registry/entitlements", json=body).status_code in (
            200,
            202,
        )
    wait_for(lambda: confirmations(hub), what="confirmation")
    sim._stopping.wait(0.3)
    assert len(confirmations(hub)) == 1
    assert sim.counters.duplicates == 2


def test_seller_records_confirmations(simulator):
    sim = simulator()
    body = {"deliveryOrderReferenceId": "R-1", "newStatus": "processed"}
    response = httpx.put(f"{sim.base_url}/seller/deliveryorders/confirmations", json=body)
    assert response.status_code == 200
    assert sim.counters.seller_confirmations == 1
    assert sim.received[-1].body == body


def test_fail_share_and_slow_share(hub, simulator):
    failing = simulator(fail_share=1.0)
    response = httpx.put(f"{failing.base_url}/registry/entitlements", json=request_body())
    assert response.status_code == 503
    assert failing.counters.failed_on_purpose == 1
    slow = simulator(slow_share=1.0, slow_seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.put(f"{slow.base_url}/registry/entitlements", json=request_body(), timeout=0.2)
    assert slow.counters.slow_on_purpose == 1


def test_unprefixed_path_needs_a_single_role(hub, simulator):
    both = simulator()
    assert httpx.put(f"{both.base_url}/entitlements", json=request_body()).status_code == 404
    only_portal = simulator(registry=False, seller=False)
    body = request_body(url_status="initialized")
    assert httpx.put(f"{only_portal.base_url}/entitlements", json=body).status_code == 202
    stats = httpx.get(f"{only_portal.base_url}/_simulator").json()
    assert stats["roles"] == ["portal"] and stats["received"] == 1


def test_simulator_retries_when_the_hub_fails(simulator):
    answers = iter([Answer(503), Answer(202)])
    flaky_hub = LoopbackParty(lambda r: next(answers, Answer(202))).start()
    try:
        sim = simulator(hub_url=flaky_hub.base_url)
        httpx.put(f"{sim.base_url}/registry/entitlements", json=request_body())
        wait_for(lambda: sim.counters.confirmations_sent == 1, what="confirmation retried")
        assert len(flaky_hub.bodies("/entitlements/confirmations")) == 2
    finally:
        flaky_hub.stop()


def test_hub_dispatch_talks_to_the_simulator(registry, hub, simulator):
    """The hub's own Entitlement requests, delivered by dispatch, are understood."""
    sim = simulator()
    registry.licensor.endpoint_base_url = f"{sim.base_url}/registry"
    registry.licensor.endpoint_token_url = f"{sim.base_url}/oauth2/token"
    registry.licensor.endpoint_client_id = "hub"
    registry.licensor.endpoint_client_secret = "hub-secret"
    registry.licensor.save()
    registry.portal.endpoint_base_url = f"{sim.base_url}/portal"
    registry.portal.save()
    make_order(registry, 3)
    outbox.drain(registry.licensor.pk)
    outbox.drain(registry.portal.pk)
    assert set(OutboundMessage.objects.values_list("state", flat=True)) == {"delivered"}
    wait_for(lambda: len(confirmations(hub)) == 6, what="six confirmations")
    refs = {str(r) for r in OutboundMessage.objects.values_list("reference_id", flat=True)}
    assert {c["entitlementReferenceId"] for c in confirmations(hub)} == refs
    statuses = sorted(
        c.get("newEntitlementStatus") or c["newUrlStatus"]["urlStatus"] for c in confirmations(hub)
    )
    assert statuses == ["entitled"] * 3 + ["processed"] * 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_runs_as_a_subprocess(hub, subprocess_env):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "simulate_party",
            "--port",
            str(port),
            "--hub",
            hub.base_url,
            "--portal",
            "portal-zuid",
            "--portal-client",
            "zuid-portal:zuid-portal-secret",
            "--delay",
            "0.05",
        ],
        cwd=ROOT,
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def up():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/_simulator").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=60, what="simulator up")
        body = request_body(url_status="initialized")
        assert httpx.put(f"http://127.0.0.1:{port}/entitlements", json=body).status_code == 202
        wait_for(lambda: confirmations(hub), what="confirmation from the subprocess")
        assert confirmations(hub)[0]["newUrlStatus"]["urlStatus"] == "processed"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_command_refuses_missing_roles_and_credentials(subprocess_env):
    run = [sys.executable, str(ROOT / "manage.py"), "simulate_party", "--port", "0"]
    out = subprocess.run(run, cwd=ROOT, env=subprocess_env, capture_output=True, text=True)
    assert out.returncode != 0 and "at least one role" in out.stderr
    out = subprocess.run(
        [*run, "--registry"], cwd=ROOT, env=subprocess_env, capture_output=True, text=True
    )
    assert out.returncode != 0 and "--registry-client" in out.stderr
