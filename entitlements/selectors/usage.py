"""The hub's own usage figures per contract and delivery order (to reconcile them with the
licence registries' ``GET /usage/contracts/{id}``, seed 001)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import Count, Q

from entitlements.models import Entitlement
from entitlements.statuses import EntitlementStatus

# A DeliveryOrderUsage total counts the entitlements whose current status is that status.
TOTAL_STATUSES: dict[str, str] = {
    "totalEntitled": EntitlementStatus.ENTITLED,
    "totalLicensed": EntitlementStatus.LICENSED,
    "totalCancelled": EntitlementStatus.CANCELLED,
    "totalBlocked": EntitlementStatus.BLOCKED,
    "totalExpired": EntitlementStatus.EXPIRED,
}


@dataclass
class HubUsage:
    """The hub's totals of one contract at one licensor, per delivery order and summed."""

    contract_id: str
    licensor_id: int
    orders: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        keys = ["entitlements", *TOTAL_STATUSES]
        return {key: sum(order[key] for order in self.orders.values()) for key in keys}


def hub_usage(contract_id: str | None = None) -> dict[tuple[str, int], HubUsage]:
    """The hub's totals of every contract (or one), keyed by (contractId, licensor pk): one
    aggregate query grouping the entitlements by contract, licensor and delivery order."""
    rows = (
        Entitlement.objects.filter(delivery_order__contract_id__isnull=False)
        .filter(**({"delivery_order__contract_id": contract_id} if contract_id else {}))
        .values(
            "delivery_order__contract_id",
            "delivery_order__product__licensor_id",
            "delivery_order__delivery_order_id",
        )
        .annotate(
            entitlements=Count("id"),
            **{key: Count("id", filter=Q(status=status)) for key, status in TOTAL_STATUSES.items()},
        )
        .order_by()
    )
    result: dict[tuple[str, int], HubUsage] = {}
    for row in rows:
        key = (row["delivery_order__contract_id"], row["delivery_order__product__licensor_id"])
        usage = result.get(key)
        if usage is None:
            usage = result[key] = HubUsage(*key)
        usage.orders[row["delivery_order__delivery_order_id"]] = {
            "entitlements": row["entitlements"],
            **{k: row[k] for k in TOTAL_STATUSES},
        }
    return result


def hub_statuses(contract_id: str, licensor_id: int) -> Iterator[tuple[str, str, str]]:
    """(entitlementId, deliveryOrderId, status) of a contract's entitlements at a licensor,
    streamed (a contract may hold hundreds of thousands)."""
    return (
        (str(entitlement_id), order_id, status)
        for entitlement_id, order_id, status in Entitlement.objects.filter(
            delivery_order__contract_id=contract_id,
            delivery_order__product__licensor_id=licensor_id,
        )
        .values_list("entitlement_id", "delivery_order__delivery_order_id", "status")
        .order_by()
        .iterator(chunk_size=5000)
    )
