"""Totals of one delivery order, or of all orders of a contract, for the admin's order and
contract pages (docs/support-desk.md, "Delivery order page").

Five GROUP BY queries whatever the number of entitlements: entitlements per status, per URL
status (entitlements with that URL status at some portal, as the changelist's filter counts
them), URL statuses per portal and status, and the outbound messages per recipient and
state (requests through their entitlement, the seller's confirmations directly: two
queries, so each reads one index instead of an OR across a join).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q

from entitlements.models import DeliveryOrder, Entitlement, EntitlementUrlStatus, OutboundMessage
from entitlements.statuses import EntitlementStatus, MessageState, UrlStatus


@dataclass(frozen=True)
class PortalTotals:
    """One portal's URL statuses: status → number of entitlements."""

    portal_pk: int
    portal: str
    by_status: dict[str, int]


@dataclass(frozen=True)
class RecipientTotals:
    """One recipient's outbound messages by state."""

    recipient: str
    delivered: int = 0
    pending: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        """All of the recipient's messages."""
        return self.delivered + self.pending + self.failed


@dataclass(frozen=True)
class Totals:
    """The totals of a set of delivery orders; every status appears, zero or not, in the
    order of the status enumerations."""

    entitlements: int
    by_status: dict[str, int]
    by_url_status: dict[str, int]
    portals: list[PortalTotals] = field(default_factory=list)
    recipients: list[RecipientTotals] = field(default_factory=list)


def _zeroes(values: list[str], counted: dict[str, int]) -> dict[str, int]:
    return {value: counted.get(value, 0) for value in values}


def totals_of_orders(orders: Q) -> Totals:
    """The totals of the delivery orders that ``orders`` (a filter of ``DeliveryOrder``)
    selects. Five queries."""
    order_pks = DeliveryOrder.objects.filter(orders).values("pk")
    entitlements = Entitlement.objects.filter(delivery_order__in=order_pks)
    by_status = dict(
        entitlements.order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    url_rows = EntitlementUrlStatus.objects.filter(
        entitlement__delivery_order__in=order_pks
    ).order_by()
    by_url_status = dict(
        url_rows.values_list("status")
        .annotate(n=Count("entitlement", distinct=True))
        .values_list("status", "n")
    )
    per_portal: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for portal_pk, portal, status, n in (
        url_rows.values_list("portal", "portal__name", "status")
        .annotate(n=Count("pk"))
        .values_list("portal", "portal__name", "status", "n")
    ):
        per_portal[(portal_pk, portal)][status] = n
    states: dict[str, dict[str, int]] = defaultdict(dict)
    for messages in (
        OutboundMessage.objects.filter(entitlement__delivery_order__in=order_pks),
        OutboundMessage.objects.filter(delivery_order__in=order_pks),
    ):
        for recipient, state, n in (
            messages.order_by()
            .values_list("recipient__name", "state")
            .annotate(n=Count("pk"))
            .values_list("recipient__name", "state", "n")
        ):
            states[recipient][state] = states[recipient].get(state, 0) + n
    return Totals(
        entitlements=sum(by_status.values()),
        by_status=_zeroes(EntitlementStatus.values, by_status),
        by_url_status=_zeroes(UrlStatus.values, by_url_status),
        portals=[
            PortalTotals(pk, name, _zeroes(UrlStatus.values, counts))
            for (pk, name), counts in sorted(per_portal.items(), key=lambda item: item[0][1])
        ],
        recipients=[
            RecipientTotals(
                recipient,
                delivered=counts.get(MessageState.DELIVERED, 0),
                pending=counts.get(MessageState.PENDING, 0),
                failed=counts.get(MessageState.FAILED, 0),
            )
            for recipient, counts in sorted(states.items())
        ],
    )


def order_totals(order_pk: int) -> Totals:
    """The totals of one delivery order."""
    return totals_of_orders(Q(pk=order_pk))


def contract_orders(contract_id: str) -> list[DeliveryOrder]:
    """The delivery orders of a contract, with what their rows on the contract page show
    (one query)."""
    return list(
        DeliveryOrder.objects.filter(contract_id=contract_id)
        .select_related("seller", "school", "product")
        .order_by("delivery_order_id", "pk")
    )


def contract_totals(contract_id: str) -> Totals:
    """The totals of all delivery orders of a contract (``contractId``)."""
    return totals_of_orders(Q(contract_id=contract_id))
