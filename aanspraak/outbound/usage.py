"""Client of a licence registry's ``GET /usage/contracts/{id}`` (seed 001, scope
``eduv.usage.entitlor``): what the registry holds for one contract.

The page's response is one ``DeliveryOrderUsage`` (``deliveryOrderId``, the five totals,
``entitlements[]``), but a contract may span several delivery orders: the client accepts
either one object or an array of them. The shape of ``entitlements[*]`` is cut off in the
page; the client accepts seed-002 Entitlement-like items and reads only ``entitlementId`` and
``entitlementStatus`` (both required, strings); other fields are ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .client import Endpoint, endpoint_for_party
from .fetch import MalformedBody, fetch_json, need_count, need_object, need_string

SCOPE = "eduv.usage.entitlor"
TOTALS = ("totalEntitled", "totalLicensed", "totalCancelled", "totalBlocked", "totalExpired")


@dataclass(frozen=True)
class DeliveryOrderUsage:
    """One delivery order's usage at the registry. A total the registry left out is None."""

    delivery_order_id: str
    totals: dict[str, int | None]
    statuses: dict[str, str] = field(default_factory=dict)  # entitlementId -> status


def _usage(value: Any, path: str) -> DeliveryOrderUsage:
    obj = need_object(value, path)
    delivery_order_id = need_string(obj, "deliveryOrderId", path)
    assert delivery_order_id is not None
    totals = {key: need_count(obj, key, path) for key in TOTALS}
    items = obj.get("entitlements")
    if not isinstance(items, list):
        raise MalformedBody(f"{path}.entitlements is required: a list")
    statuses: dict[str, str] = {}
    for i, item in enumerate(items):
        p = f"{path}.entitlements[{i}]"
        item = need_object(item, p)
        entitlement_id = need_string(item, "entitlementId", p)
        status = need_string(item, "entitlementStatus", p)
        assert entitlement_id is not None and status is not None
        if entitlement_id in statuses:
            raise MalformedBody(f"{p}.entitlementId {entitlement_id} is listed twice")
        statuses[entitlement_id] = status
    return DeliveryOrderUsage(delivery_order_id, totals, statuses)


def parse_contract_usage(data: Any) -> list[DeliveryOrderUsage]:
    """One DeliveryOrderUsage object or an array of them; raises MalformedBody."""
    if isinstance(data, list):
        usages = [_usage(item, f"usage[{i}]") for i, item in enumerate(data)]
    else:
        usages = [_usage(data, "usage")]
    seen: set[str] = set()
    for usage in usages:
        if usage.delivery_order_id in seen:
            raise MalformedBody(f"deliveryOrderId {usage.delivery_order_id} is listed twice")
        seen.add(usage.delivery_order_id)
    return usages


def registry_endpoint(party) -> Endpoint:
    """The Endpoint of a licence registry, asking tokens for the usage scope."""
    return dataclasses.replace(endpoint_for_party(party), scope=SCOPE)


def get_contract_usage(endpoint: Endpoint, contract_id: str) -> list[DeliveryOrderUsage]:
    """``GET /usage/contracts/{contract_id}``: the registry's usage per delivery order.
    Raises ChainCallError (see aanspraak.outbound.fetch for the kinds)."""
    return fetch_json(
        endpoint,
        f"usage/contracts/{quote(contract_id, safe='')}",
        parse_contract_usage,
        what=f"usage of contract {contract_id} at {endpoint.name or endpoint.base_url}",
    )
