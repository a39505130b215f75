"""Delivery orders for the scenarios: the body of a school-students order, storing it over
HTTP (timed) or through the intake service in process (set-up, not measured), and marking
its requests delivered so that no worker sends them during another scenario."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from .bench import Bench
from .parties import PRODUCT, SCHOOL


def order_body(students: int, order_id: str) -> dict:
    """A school-students delivery order for the bench school, one portal by consent."""
    tag = uuid.uuid4().hex[:8]
    return {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": order_id,
            "contractId": "C-bench",
            "buyer": {"school": {"organisationMasterIdentifier": SCHOOL}},
            "productId": PRODUCT,
            "deliveryType": "school-students",
            "deliverySpecification": {
                "students": [
                    {"userMasterIdentifier": f"https://ketenid.nl/201703/{tag}-{i:07d}"}
                    for i in range(students)
                ]
            },
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
            "expirationDate": "2027-07-31",
        },
    }


def put_order(bench: Bench, students: int, order_id: str) -> tuple[int, float]:
    """PUT /deliveryorders over HTTP; (the order's pk, seconds to the 202)."""
    raw = json.dumps(order_body(students, order_id)).encode()
    started = time.perf_counter()
    answer = httpx.put(
        f"{bench.hub.url}/deliveryorders",
        content=raw,
        headers={
            "Authorization": f"Bearer {bench.tokens['seller']}",
            "Content-Type": "application/json",
        },
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if answer.status_code != 202:
        raise RuntimeError(f"intake answered {answer.status_code}: {answer.text[:500]}")
    return order_pk(bench, order_id), elapsed


def order_pk(bench: Bench, order_id: str) -> int:
    """The primary key of the order ``order_id``."""
    return bench.sql(
        "SELECT id FROM entitlements_deliveryorder WHERE delivery_order_id = %s", (order_id,)
    )[0][0]


def order_in_process(order_id: str, students: int) -> int:
    """An order stored by the intake service itself (no HTTP: set-up, not measured)."""
    from aanspraak.models import Party
    from entitlements.intake import receive_delivery_order

    seller = Party.objects.get(name="Bench Seller")
    result = receive_delivery_order(seller, order_body(students, order_id))
    from entitlements.models import DeliveryOrder

    del result
    return DeliveryOrder.objects.get(seller=seller, delivery_order_id=order_id).pk


def settle_messages(bench: Bench, pk: int) -> None:
    """Mark an order's requests delivered, as dispatch would, so that no worker sends them
    during a scenario that measures something else."""
    bench.sql(
        "UPDATE entitlements_outboundmessage SET state = 'delivered', delivered_at = now(), "
        "attempt_count = 1 WHERE state = 'pending' AND (delivery_order_id = %(pk)s OR "
        "entitlement_id IN (SELECT id FROM entitlements_entitlement "
        "WHERE delivery_order_id = %(pk)s))",
        {"pk": pk},
    )
