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


# A delivery order of the hub: its deliveryOrderId is unique per seller only, so the key
# is (seller name, deliveryOrderId).
OrderKey = tuple[str, str]


@dataclass
class HubUsage:
    """The hub's totals of one contract at one licensor, per delivery order (keyed by
    (seller name, deliveryOrderId)) and summed."""

    contract_id: str
    licensor_id: int
    orders: dict[OrderKey, dict[str, int]] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        keys = ["entitlements", *TOTAL_STATUSES]
        return {key: sum(order[key] for order in self.orders.values()) for key in keys}

    def by_order_id(self) -> dict[str, list[OrderKey]]:
        """The hub's orders per deliveryOrderId (more than one: sellers share the id)."""
        found: dict[str, list[OrderKey]] = {}
        for key in sorted(self.orders):
            found.setdefault(key[1], []).append(key)
        return found

    def label(self, key: OrderKey, by_id: dict[str, list[OrderKey]] | None = None) -> str:
        """The deliveryOrderId, with its seller when another seller's order shares it
        (``by_id``: by_order_id(), when the caller has it)."""
        by_id = by_id if by_id is not None else self.by_order_id()
        if len(by_id[key[1]]) > 1:
            return f"{key[1]} (seller {key[0]})"
        return key[1]

    def orders_by_label(self) -> dict[str, dict[str, int]]:
        """The per-order totals keyed by label (for storing as JSON)."""
        by_id = self.by_order_id()
        return {self.label(key, by_id): totals for key, totals in sorted(self.orders.items())}


def hub_usage(contract_id: str | None = None) -> dict[tuple[str, int], HubUsage]:
    """The hub's totals of every contract (or one), keyed by (contractId, licensor pk): one
    aggregate query grouping the entitlements by contract, licensor and delivery order."""
    rows = (
        Entitlement.objects.filter(delivery_order__contract_id__isnull=False)
        .filter(**({"delivery_order__contract_id": contract_id} if contract_id else {}))
        .values(
            "delivery_order__contract_id",
            "delivery_order__product__licensor_id",
            "delivery_order__seller__name",
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
        order_key = (row["delivery_order__seller__name"], row["delivery_order__delivery_order_id"])
        usage.orders[order_key] = {
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
