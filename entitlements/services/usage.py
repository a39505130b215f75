"""Usage reconciliation with the licence registries (seed 001, ``GET /usage/contracts/{id}``):
``manage.py reconcile_usage`` and the periodic task ``entitlements.tasks.reconcile_usage``.

For each contract and each licence registry that handles a product of the contract's
delivery orders, the registry's DeliveryOrderUsage is fetched and compared with the hub's:

- per delivery order and per contract, the five totals (a total the registry leaves out is
  not compared); a total counts the entitlements whose current status is that status;
- per entitlement, the status: differing, missing at the registry, or unknown at the hub;
- delivery orders one side has and the other lacks (their entitlements are not listed one
  by one).

Every run is stored as a :class:`UsageReconciliation` (``matched``, ``different`` or
``failed`` with the error) with its :class:`UsageDifference` rows (the first
MAX_DIFFERENCES_STORED; ``difference_count`` has them all). A failed fetch is not retried
within the run: the next run is the retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from aanspraak.models import Party
from aanspraak.outbound.fetch import ChainCallError
from aanspraak.outbound.usage import (
    TOTALS,
    DeliveryOrderUsage,
    get_contract_usage,
    registry_endpoint,
)
from entitlements.models import UsageDifference, UsageReconciliation
from entitlements.selectors.usage import HubUsage, hub_statuses, hub_usage
from entitlements.statuses import ReconciliationOutcome

Kind = UsageDifference.Kind
MAX_DIFFERENCES_STORED = 10_000

Progress = Callable[[int, int, str], None]


@dataclass
class _Differences:
    rows: list[UsageDifference]
    count: int = 0

    def add(
        self,
        kind: str,
        order: str = "",
        entitlement: str = "",
        field: str = "",
        hub="",
        registry="",
    ) -> None:
        self.count += 1
        if len(self.rows) < MAX_DIFFERENCES_STORED:
            self.rows.append(
                UsageDifference(
                    kind=kind,
                    delivery_order_id=order[:200],
                    entitlement_id=entitlement[:200],
                    field=field,
                    hub_value="" if hub is None else str(hub)[:200],
                    registry_value="" if registry is None else str(registry)[:200],
                )
            )


def _registry_totals(usages: list[DeliveryOrderUsage]) -> dict[str, int | None]:
    totals: dict[str, int | None] = {}
    for key in TOTALS:
        values = [u.totals[key] for u in usages if u.totals[key] is not None]
        totals[key] = sum(values) if values else None
    return totals


def compare(hub: HubUsage, usages: list[DeliveryOrderUsage]) -> _Differences:
    """The differences between the hub's figures and the registry's.

    The registry names an order by deliveryOrderId alone, which is unique per seller only:
    when two sellers' orders of this contract and licensor share the id, the registry's
    order cannot be told apart and is recorded as ambiguous (kind ``order-unknown-at-hub``,
    field ``ambiguous``) instead of being compared with the two merged. Entitlements are
    still compared one by one (their ids are the hub's, unique)."""
    diffs = _Differences(rows=[])
    theirs = {u.delivery_order_id: u for u in usages}
    mine = hub.by_order_id()
    for order_id in sorted(set(mine) - set(theirs)):
        for key in mine[order_id]:
            diffs.add(
                Kind.ORDER_MISSING_AT_REGISTRY,
                hub.label(key, mine),
                hub=hub.orders[key]["entitlements"],
            )
    for order_id in sorted(set(theirs) - set(mine)):
        diffs.add(Kind.ORDER_UNKNOWN_AT_HUB, order_id, registry=len(theirs[order_id].statuses))
    registry_totals = _registry_totals(usages)
    hub_totals = hub.totals
    for key in TOTALS:
        if registry_totals[key] is not None and registry_totals[key] != hub_totals[key]:
            diffs.add(Kind.TOTAL, "", field=key, hub=hub_totals[key], registry=registry_totals[key])
    for order_id in sorted(set(mine) & set(theirs)):
        keys = mine[order_id]
        if len(keys) > 1:
            sellers = ", ".join(seller for seller, _ in keys)
            diffs.add(
                Kind.ORDER_UNKNOWN_AT_HUB,
                order_id,
                field="ambiguous",
                hub=f"{len(keys)} orders with this id, of sellers {sellers}",
                registry=len(theirs[order_id].statuses),
            )
            continue
        totals = hub.orders[keys[0]]
        for key in TOTALS:
            value = theirs[order_id].totals[key]
            if value is not None and value != totals[key]:
                diffs.add(Kind.TOTAL, order_id, field=key, hub=totals[key], registry=value)
    # Per entitlement, within the orders both sides know.
    registry_status: dict[str, tuple[str, str]] = {}
    for order_id, usage in theirs.items():
        if order_id in mine:
            for entitlement_id, status in usage.statuses.items():
                registry_status[entitlement_id.lower()] = (order_id, status)
    for entitlement_id, order_id, status in hub_statuses(hub.contract_id, hub.licensor_id):
        if order_id not in theirs:
            continue
        found = registry_status.pop(entitlement_id, None)
        if found is None:
            diffs.add(Kind.MISSING_AT_REGISTRY, order_id, entitlement_id, hub=status)
        elif found[1] != status:
            diffs.add(Kind.STATUS, order_id, entitlement_id, "entitlementStatus", status, found[1])
    for entitlement_id, (order_id, status) in sorted(registry_status.items()):
        diffs.add(Kind.UNKNOWN_AT_HUB, order_id, entitlement_id, registry=status)
    return diffs


def reconcile_one(hub: HubUsage, licensor: Party) -> UsageReconciliation:
    """Fetch one contract's usage from one registry, compare, store the result."""
    started = timezone.now()
    record = UsageReconciliation(
        contract_id=hub.contract_id,
        licensor=licensor,
        started_at=started,
        hub_totals={"orders": hub.orders_by_label(), "contract": hub.totals},
    )
    try:
        usages = get_contract_usage(registry_endpoint(licensor), hub.contract_id)
    except ChainCallError as exc:
        record.outcome = ReconciliationOutcome.FAILED
        record.error = str(exc)
        record.http_status = exc.http_status
        record.finished_at = timezone.now()
        record.save()
        return record
    record.registry_totals = {
        "orders": {u.delivery_order_id: u.totals for u in usages},
        "contract": _registry_totals(usages),
    }
    record.http_status = 200
    diffs = compare(hub, usages)
    record.difference_count = diffs.count
    record.outcome = (
        ReconciliationOutcome.DIFFERENT if diffs.count else ReconciliationOutcome.MATCHED
    )
    record.finished_at = timezone.now()
    with transaction.atomic():
        record.save()
        for row in diffs.rows:
            row.reconciliation = record
        UsageDifference.objects.bulk_create(diffs.rows, batch_size=2000)
    return record


def reconcile_contracts(
    contract_id: str | None = None, progress: Progress | None = None
) -> list[UsageReconciliation]:
    """Reconcile every contract (or one) with each licence registry involved. ``progress``
    is called as ``(done, total, label)`` after each."""
    figures = hub_usage(contract_id)
    keys = sorted(figures)
    licensors = Party.objects.in_bulk({licensor_id for _, licensor_id in keys})
    results = []
    for i, key in enumerate(keys, start=1):
        licensor = licensors[key[1]]
        results.append(reconcile_one(figures[key], licensor))
        if progress is not None:
            progress(i, len(keys), f"contract {key[0]} at {licensor.name}")
    return results
