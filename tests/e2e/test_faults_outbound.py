"""Outbound delivery at scale with faults: an order of 2,000 students (4,000 Entitlement
requests, to the licensor and to the portal, plus the seller's confirmation) sent by real
Celery workers to a loopback recipient that fails 30 % of the requests, while the only worker
is SIGKILLed mid-drain and started again (docs/reliability.md, docs/delivery.md).

The recipient's faults are a deterministic mix, chosen per (entitlementReferenceId, attempt)
by a hash: 500, 503, the connection closed without an answer, the connection reset, and an
answer slower than the hub's timeout (the recipient then gives up too: it answers 503, so a
request the hub timed out on is never one the recipient accepted). Every kind is retried
(aanspraak/outbound/policy.py).

What must hold: every message ends ``delivered`` with exactly one successful attempt in the
hub's records; every attempt the hub recorded is a request the recipient saw, and the other
way round, except for the batches the killed worker held. Delivery is at least once by design
(docs/delivery.md): a request the recipient answered 2xx just before the SIGKILL, whose
result the worker never committed, is sent again after its lease. So the recipient accepts
each entitlementReferenceId once, except exactly those claimed by the killed worker (at most
two drains times two batches), and those at most twice, under the same entitlementReferenceId.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections import Counter

import pytest
from django.db.models import Count, Q
from django.utils import timezone
from rest_framework.test import APIClient

from entitlements.models import DeliveryAttempt, EntitlementUrlStatus, OutboundMessage
from entitlements.statuses import MessageKind
from tests.support.loopback import Answer, LoopbackParty
from tests.support.processes import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

STUDENTS = 2000
BATCH = 50
TIMEOUT = 1.0  # HUB_OUTBOUND_TIMEOUT; a slow answer takes longer
# The recipient's faults, as shares of all requests (30 % in all).
FAULTS = (("500", 0.08), ("503", 0.08), ("close", 0.06), ("reset", 0.05), ("slow", 0.03))
WORKER_ENV = {
    "HUB_OUTBOUND_TIMEOUT": str(TIMEOUT),
    "HUB_OUTBOUND_BATCH_SIZE": str(BATCH),
    "HUB_RETRY_BASE_SECONDS": "0.05",
    "HUB_RETRY_MAX_DELAY_SECONDS": "0.3",
    "HUB_OUTBOUND_SWEEP_SECONDS": "0.5",
}


# Attempts that never reached the recipient: no connection (its listen backlog was full).
UNREACHED = Q(attempts__error__startswith="timeout: ConnectTimeout") | Q(
    attempts__error__startswith="connection error: ConnectError"
)


def fault_of(key: str, attempt: int) -> str:
    """The recipient's answer to the ``attempt``-th request (0-based) for ``key``: "ok" or a
    fault of FAULTS, the same in every run for the same key and attempt."""
    digest = hashlib.sha256(f"{key}/{attempt}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    for kind, share in FAULTS:
        if point < share:
            return kind
        point -= share
    return "ok"


class Recipient:
    """The licensor's, the portal's and the seller's API in one loopback server, answering
    by ``fault_of``; it logs every request it read as (sequence, key, what it answered)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log: list[tuple[int, str, str]] = []
        self.seen: Counter = Counter()  # requests read per key
        self.server = LoopbackParty(self.answer)

    def answer(self, received) -> Answer:
        body = received.body or {}
        key = body.get("entitlementReferenceId") or body.get("deliveryOrderReceiveId") or "?"
        with self.lock:
            kind = fault_of(key, self.seen[key])
            self.seen[key] += 1
            self.log.append((len(self.log), key, kind))
        if kind == "ok":
            return Answer(200, {"status": 200})
        if kind in ("500", "503"):
            return Answer(int(kind), {"status": 99, "statusMessage": "not now"})
        if kind == "slow":
            return Answer(503, delay=TIMEOUT * 1.5)
        return Answer(drop=kind)

    def __enter__(self) -> Recipient:
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    def accepted(self) -> int:
        with self.lock:
            return sum(1 for _, _, kind in self.log if kind == "ok")


def _order_body(students: int) -> dict:
    return {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": "DO-outbound-faults",
            "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
            "productId": "9789001000011",
            "deliveryType": "school-students",
            "deliverySpecification": {
                "students": [
                    {"userMasterIdentifier": f"https://ketenid.nl/201703/of{i:05d}"}
                    for i in range(students)
                ]
            },
            "portals": ["portal-zuid"],
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
        },
    }


def test_four_thousand_requests_through_a_failing_recipient_and_a_killed_worker(
    registry, make_token, celery_worker_process, woken_drains, tmp_path
):
    with Recipient() as recipient:
        for party in (registry.licensor, registry.portal, registry.seller):
            party.endpoint_base_url = recipient.server.base_url
            party.save()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}")
        answer = client.put("/deliveryorders", _order_body(STUDENTS), format="json")
        assert answer.status_code == 202, answer.content
        messages = OutboundMessage.objects.all()
        total = messages.count()
        assert total == 2 * STUDENTS + 1  # licensor, portal; the seller's confirmation
        # The wake-ups went nowhere (woken_drains): the sweep of the worker's beat starts
        # the drains, as after a lost wake-up.
        assert woken_drains

        beat = ["-B", "--schedule", str(tmp_path / "beat-schedule")]
        victim = celery_worker_process(beat, env=WORKER_ENV)
        wait_for(
            lambda: recipient.accepted() >= total * 0.35 and recipient.server.in_flight > 0,
            timeout=240,
            interval=0.01,
            what="a third delivered, requests in flight",
        )
        victim.kill()  # SIGKILL, pool children too: nothing it held is committed
        kill_seq = len(recipient.log)
        time.sleep(0.5)  # PostgreSQL ends the dead worker's sessions
        killed_at = timezone.now()
        # What the dead worker held: leased well beyond any backoff (at most 0.3 s).
        held = set(
            messages.filter(
                state="pending", next_attempt_at__gt=killed_at + dt.timedelta(seconds=10)
            ).values_list("reference_id", flat=True)
        )
        held = {str(ref) for ref in held}
        assert held, "the worker was killed outside a drain"
        assert len(held) <= 2 * 2 * BATCH  # two drains (its pool), two batches each

        celery_worker_process(beat, env=WORKER_ENV)  # started again, as a supervisor does
        celery_worker_process(env=WORKER_ENV)  # and a second one
        wait_for(
            lambda: not messages.exclude(state="delivered").exists(),
            timeout=300,
            interval=0.5,
            what="every message delivered",
            state=lambda: Counter(messages.values_list("state", flat=True)),
        )
        time.sleep(1)  # any request still on its way would show up in the log
        log = list(recipient.log)

    # The hub's records: one successful attempt each, every attempt counted.
    per_message = messages.annotate(
        tries=Count("attempts"),
        successes=Count("attempts", filter=Q(attempts__outcome="delivered")),
        unreached=Count("attempts", filter=UNREACHED),
    ).values_list("reference_id", "attempt_count", "tries", "successes", "unreached")
    hub_tries, unreached = {}, 0
    for ref, attempt_count, tries, successes, not_connected in per_message:
        assert successes == 1, (ref, successes)
        assert attempt_count == tries, (ref, attempt_count, tries)
        # What the recipient can have seen: the attempts that got a connection.
        hub_tries[str(ref)] = tries - not_connected
        unreached += not_connected
    assert not DeliveryAttempt.objects.exclude(outcome__in=["delivered", "retry"]).exists()
    assert set(EntitlementUrlStatus.objects.values_list("status", flat=True)) == {"initialized"}

    # The recipient's side, per entitlementReferenceId.
    requests_of = Counter(key for _, key, _ in log)
    accepted_of = Counter(key for _, key, kind in log if kind == "ok")
    refs = {
        str(ref)
        for ref in messages.filter(kind=MessageKind.ENTITLEMENT_REQUEST).values_list(
            "reference_id", flat=True
        )
    }
    assert len(refs) == 2 * STUDENTS
    assert {ref for ref in refs if accepted_of[ref] == 0} == set()  # none lost
    twice = {ref for ref in refs if accepted_of[ref] > 1}
    assert twice <= held, twice - held  # re-sent only what the killed worker held
    assert max(accepted_of[ref] for ref in refs) <= 2
    # A re-send is the same request: same reference, same entitlement, for the recipient to
    # recognise (docs/delivery.md).
    sent_for: dict[str, set] = {}
    for body in recipient.server.bodies():
        # A request the kill cut off after its headers arrives without a body: never accepted.
        if isinstance(body, dict) and body.get("entitlementReferenceId") in twice:
            sent_for.setdefault(body["entitlementReferenceId"], set()).add(
                body["entitlement"]["entitlementId"]
            )
    assert all(len(ids) == 1 for ids in sent_for.values()) and len(sent_for) == len(twice)
    # Everywhere else the hub recorded exactly the requests the recipient saw.
    unequal = {
        ref: (requests_of[ref], hub_tries[ref])
        for ref in refs - held
        if requests_of[ref] != hub_tries[ref]
    }
    assert not unequal, list(unequal.items())[:5]
    # A re-sent message's recorded success is the new worker's, after the kill.
    resent_success = DeliveryAttempt.objects.filter(
        outcome="delivered", message__reference_id__in=list(twice)
    ).values_list("started_at", flat=True)
    assert all(started >= killed_at for started in resent_success)

    faults = Counter(kind for _, _, kind in log)
    assert all(faults[kind] > 0 for kind, _ in FAULTS), faults
    injected = sum(n for kind, n in faults.items() if kind != "ok")
    assert 0.25 < injected / len(log) < 0.35, faults
    before_kill = Counter(kind for seq, _, kind in log if seq < kill_seq)
    print(
        f"\nrequests {len(log)}, faults {dict(faults)}, before the kill {sum(before_kill.values())}"
        f", held by the killed worker {len(held)}, accepted twice {len(twice)}, attempts that"
        f" got no connection {unreached}"
    )
