"""Totals of one delivery order, or of all orders of a contract, for the admin's order and
contract pages (docs/support-desk.md, "Delivery order page").

Four GROUP BY queries whatever the number of entitlements: entitlements per status; URL
statuses per portal and status together with the entitlements per URL status (with that URL
status at some portal, as the changelist's filter counts them); and the outbound messages
per recipient and state (requests through their entitlement, the seller's confirmations
directly: two queries, so each reads one index instead of an OR across a join).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Q

from aanspraak.models import Party
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
    selects. Four queries."""
    order_pks = DeliveryOrder.objects.filter(orders).values("pk")
    entitlements = Entitlement.objects.filter(delivery_order__in=order_pks)
    by_status = dict(
        entitlements.order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    by_url_status: dict[str, int] = defaultdict(int)
    per_portal: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for portal_pk, portal, status, n, first in _url_status_counts(order_pks):
        per_portal[(portal_pk, portal)][status] = n
        by_url_status[status] += first
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


# Per portal and URL status, the number of URL statuses and, counted once per entitlement
# whatever its number of portals, of entitlements with that status somewhere. The URL statuses
# are read per entitlement through a LATERAL subquery (OFFSET 0 keeps the planner from pulling
# it up into a hash join that scans every URL status of the country): the unique index led by
# the entitlement serves it, so the cost follows the order's size, not the table's
# (docs/support-desk.md, "At national size").
_URL_STATUS_COUNTS_SQL = f"""
SELECT t.portal_id, p.name, t.status, t.n, t.firsts
FROM (
    SELECT u.portal_id, u.status, count(*) AS n, count(*) FILTER (WHERE u.first) AS firsts
    FROM {Entitlement._meta.db_table} e
    CROSS JOIN LATERAL (
        SELECT portal_id, status,
               row_number() OVER (PARTITION BY status ORDER BY portal_id) = 1 AS first
        FROM {EntitlementUrlStatus._meta.db_table} WHERE entitlement_id = e.id OFFSET 0
    ) u
    WHERE e.delivery_order_id IN ({{orders}})
    GROUP BY u.portal_id, u.status
) t
JOIN {Party._meta.db_table} p ON p.id = t.portal_id
"""  # noqa: S608 (table names from the models; the orders' subquery is Django's, with parameters)


def _url_status_counts(order_pks) -> list[tuple[int, str, str, int, int]]:
    """(portal pk, portal name, URL status, URL statuses, entitlements first counted here)."""
    if connection.vendor != "postgresql":
        return _url_status_counts_in_python(order_pks)
    orders_sql, params = order_pks.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_URL_STATUS_COUNTS_SQL.format(orders=orders_sql), params)
        return cursor.fetchall()


def _url_status_counts_in_python(order_pks) -> list[tuple[int, str, str, int, int]]:
    # The embedded default (SQLite, the demo's) has no LATERAL; its orders are small.
    counts: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    seen: set[tuple[int, str]] = set()
    for entitlement, portal_pk, portal, status in (
        EntitlementUrlStatus.objects.filter(entitlement__delivery_order__in=order_pks)
        .order_by("entitlement", "portal")
        .values_list("entitlement", "portal", "portal__name", "status")
    ):
        row = counts[(portal_pk, portal, status)]
        row[0] += 1
        if (entitlement, status) not in seen:
            seen.add((entitlement, status))
            row[1] += 1
    return [(*key, n, first) for key, (n, first) in counts.items()]


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
