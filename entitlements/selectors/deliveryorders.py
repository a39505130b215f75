"""Which entitlements of a delivery order a caller may read, as seed-002 documents.

Visibility (docs/api.md, "Who sees what"), per scope of the caller's token; a
caller with several scopes sees the union:

- ``eduv.entitlement.seller``: the orders the caller's party placed (``order.seller``);
- ``eduv.entitlement.licensor``: the orders of products the party is the registry of;
- ``eduv.entitlement.portal`` / ``.dashboard``: the orders of schools that gave the party
  consent (``aanspraak.Consent``).

Activation codes are shown only on orders seen through the seller or licensor rule.

The answer is built for very large orders: a fixed number of queries whatever the size, rows
streamed in chunks, never as model instances. On PostgreSQL one streamed query (after the one
for the orders) has the database write each entitlement's JSON text (``entitlement_json``),
so the web process only joins text; elsewhere (the embedded SQLite) the documents are built
in Python from two chunked queries (``entitlement_documents``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import psycopg
from django.db import connection, transaction
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, Value

from aanspraak.choices import Scope
from aanspraak.models import Consent, Party
from aanspraak.timestamps import rfc3339
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderPortal,
    Entitlement,
    EntitlementUrlStatus,
)
from entitlements.rules.documents import order_fields

# Rows per chunk read from the database (a libpq result of the stream, a fetch of the chunked
# reads on SQLite): large enough to amortise the per-chunk work, small enough that a chunk
# stays a few megabytes.
CHUNK_SIZE = 2000

CONSENT_SCOPES = frozenset({Scope.ENTITLEMENT_PORTAL, Scope.ENTITLEMENT_DASHBOARD})


class DeliveryOrderNotVisible(Exception):
    """No order with this id exists that the caller may see (or know of)."""


class ConsentMissing(Exception):
    """The order exists and the caller would see it by its role, but the school gave it no
    consent."""


@dataclass(frozen=True)
class VisibleOrder:
    """One delivery order the caller may read, with the fields every entitlement repeats."""

    pk: int
    delivery_order_id: str
    contract_id: str | None
    product_id: str
    start_date: dt.date
    activation_until_date: dt.date
    expiration_date: dt.date | None
    show_activation_codes: bool


def _flag(condition: Q | bool) -> ExpressionWrapper | Value:
    if isinstance(condition, bool):
        return Value(condition, output_field=BooleanField())
    return ExpressionWrapper(condition, output_field=BooleanField())


def visible_orders(
    party: Party, scopes: frozenset[str], delivery_order_id: str
) -> list[VisibleOrder]:
    """The orders with ``delivery_order_id`` that ``party`` may read with ``scopes`` (one
    query). Order ids are unique per seller, so several sellers' orders may share an id.

    Raises ConsentMissing when nothing is visible but an order exists that a portal caller was
    sent (it is one of the order's portals) and whose school gave it no consent;
    DeliveryOrderNotVisible otherwise (dashboards included: existence never leaks).
    """
    as_seller = Scope.ENTITLEMENT_SELLER in scopes
    as_licensor = Scope.ENTITLEMENT_LICENSOR in scopes
    as_portal = Scope.ENTITLEMENT_PORTAL in scopes
    as_dashboard = Scope.ENTITLEMENT_DASHBOARD in scopes
    rows = (
        DeliveryOrder.objects.filter(delivery_order_id=delivery_order_id)
        .annotate(
            by_seller=_flag(Q(seller=party) if as_seller else False),
            by_licensor=_flag(Q(product__licensor=party) if as_licensor else False),
            consented=Exists(Consent.objects.filter(school=OuterRef("school"), party=party)),
            listed_portal=Exists(
                DeliveryOrderPortal.objects.filter(delivery_order=OuterRef("pk"), portal=party)
            ),
            product_code=F("product__product_id"),
        )
        .order_by("pk")
        .values_list(
            "pk",
            "contract_id",
            "product_code",
            "start_date",
            "activation_until_date",
            "expiration_date",
            "by_seller",
            "by_licensor",
            "consented",
            "listed_portal",
        )
    )
    visible: list[VisibleOrder] = []
    consent_blocked = False
    for pk, contract, product, start, until, expires, seller, licensor, consented, listed in rows:
        by_consent = bool(consented) and (as_portal or as_dashboard)
        privileged = bool(seller) or bool(licensor)
        if privileged or by_consent:
            visible.append(
                VisibleOrder(
                    pk=pk,
                    delivery_order_id=delivery_order_id,
                    contract_id=contract,
                    product_id=product,
                    start_date=start,
                    activation_until_date=until,
                    expiration_date=expires,
                    show_activation_codes=privileged,
                )
            )
        elif not consented and as_portal and listed:
            # A portal the order was sent to already knows the order exists: telling it that
            # consent is missing leaks nothing and says what to ask the school for. A
            # dashboard has no such relation to an order, so it gets the 404 of a missing one.
            consent_blocked = True
    if visible:
        return visible
    if consent_blocked:
        raise ConsentMissing(delivery_order_id)
    raise DeliveryOrderNotVisible(delivery_order_id)


def _url_statuses(order_pks: list[int]) -> Iterator[tuple[int, int, str, str]]:
    """(order pk, entitlement pk, portal id, status), in the entitlements' order."""
    return (
        EntitlementUrlStatus.objects.filter(entitlement__delivery_order_id__in=order_pks)
        .order_by("entitlement__delivery_order_id", "entitlement_id", "portal__portal_id")
        .values_list(
            "entitlement__delivery_order_id", "entitlement_id", "portal__portal_id", "status"
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )


def entitlement_documents(orders: list[VisibleOrder]) -> Iterator[dict]:
    """The seed-002 Entitlement objects of ``orders``, lazily, in a stable order (order, then
    entitlement creation). Optional fields without a value are left out, never ``null``.

    Runs two queries when first iterated, whatever the number of entitlements.
    """
    by_pk = {order.pk: order for order in orders}
    heads = {order.pk: _order_head(order) for order in orders}
    rows = (
        Entitlement.objects.filter(delivery_order_id__in=list(by_pk))
        .order_by("delivery_order_id", "pk")
        .values_list(
            "delivery_order_id",
            "pk",
            "entitlement_id",
            "end_date",
            "entitlement_type",
            "specification",
            "status",
            "date_created",
            "date_last_modified",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    statuses = _url_statuses(list(by_pk))
    pending = next(statuses, None)
    for order_pk, pk, entitlement_id, end_date, etype, spec, status, created, modified in rows:
        key = (order_pk, pk)
        # Merge join: both streams are sorted by (order, entitlement).
        while pending is not None and (pending[0], pending[1]) < key:
            pending = next(statuses, None)
        url_statuses = []
        while pending is not None and (pending[0], pending[1]) == key:
            url_statuses.append({"portal": pending[2], "urlStatus": pending[3]})
            pending = next(statuses, None)

        doc = {"entitlementId": str(entitlement_id), **heads[order_pk]}
        if end_date is not None:
            doc["endDate"] = end_date.isoformat()
        doc["entitlementType"] = etype
        if spec:
            if "activationCode" in spec and not by_pk[order_pk].show_activation_codes:
                spec = {k: v for k, v in spec.items() if k != "activationCode"}
            if spec:
                doc["entitlementSpecification"] = spec
        doc["entitlementStatus"] = status
        if url_statuses:
            doc["urlStatuses"] = url_statuses
        doc["dateCreated"] = rfc3339(created)
        doc["dateLastModified"] = rfc3339(modified)
        yield doc


def _order_head(order: VisibleOrder) -> dict:
    """The fields of an Entitlement that come from its delivery order, in the seed's order."""
    return order_fields(
        delivery_order_id=order.delivery_order_id,
        contract_id=order.contract_id,
        product_id=order.product_id,
        start_date=order.start_date,
        activation_until_date=order.activation_until_date,
        expiration_date=order.expiration_date,
    )


def entitlement_json(orders: list[VisibleOrder]) -> Generator[list[str], None, None]:
    """The seed-002 Entitlement objects of ``orders`` as JSON texts, lazily, in chunks of at
    most CHUNK_SIZE, in the order of ``entitlement_documents`` and parsing to exactly its
    documents.

    On PostgreSQL one streamed query builds the texts (``_ENTITLEMENT_JSON_SQL``); elsewhere
    ``entitlement_documents`` is encoded here.
    """
    if connection.vendor != "postgresql":
        documents = entitlement_documents(orders)
        yield from _chunks(json.dumps(d, separators=(",", ":")) for d in documents)
        return
    heads = [json.dumps(_order_head(order), separators=(",", ":"))[1:-1] for order in orders]
    params = [
        [order.pk for order in orders],
        heads,
        [order.show_activation_codes for order in orders],
    ]
    # In a transaction so that SET LOCAL can turn JIT off for this query: the planner's cost
    # of a large order passes jit_above_cost, and compiling the per-row expressions takes
    # longer (seconds) than running them. No savepoint inside an outer transaction: nothing
    # here is written (and the view streams after the request's own transaction, if any).
    # Each chunk is handed on once the next one has been read, the last one after the
    # transaction has ended: an order of at most CHUNK_SIZE entitlements, which the view reads
    # before it answers (``entitlements.api.read.Primed``), leaves no transaction open then.
    last = None
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        for chunk in _chunks(_stream(cursor, _ENTITLEMENT_JSON_SQL, params)):
            if last is not None:
                yield last
            last = chunk
    if last is not None:
        yield last


def _stream(cursor: CursorWrapper, sql: str, params: list) -> Iterator[str]:
    """The first column of ``sql``'s rows as PostgreSQL sends them (psycopg's ``stream``, in
    libpq's chunked mode where it has it): unlike a server-side cursor, the database keeps
    writing while the view sends, with no round trip per chunk and no copy kept on the
    server; the socket's buffer bounds what waits. Logged like ``execute`` (Django's cursor
    wrapper has no ``stream``), so query counts and logs see it."""
    size = CHUNK_SIZE if psycopg.pq.version() >= 170000 else 1
    logged = cursor.debug_sql(sql, params) if isinstance(cursor, CursorDebugWrapper) else None
    with logged or nullcontext(), cursor.db.wrap_database_errors:
        for (text,) in cursor.cursor.stream(sql, params, size=size):
            yield text


def _chunks(texts: Iterator[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) >= CHUNK_SIZE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# Each entitlement's JSON text in the seed's field order, parsing to what
# ``entitlement_documents`` builds: the order's fields come in as a parameter (written once per
# order in Python); optional fields without a value are left out (the key sits inside the
# COALESCE/CASE), never null; date-times as ``rfc3339`` (UTC, sub-seconds cut, Z). Type and
# status values are written without escaping: check constraints keep them to the enums' plain
# words. The URL statuses are a correlated subquery per entitlement, so that an index led by
# the URL status's entitlement (urlstatus_unique) serves them and only the order's rows are
# read. One statement: the URL statuses are of the same snapshot as their entitlements.
_ENTITLEMENT_JSON_SQL = f"""
SELECT '{{"entitlementId":"' || e.entitlement_id::text || '",' || h.head
    || CASE WHEN e.end_date IS NULL THEN '' ELSE ',"endDate":' || to_json(e.end_date) END
    || ',"entitlementType":"' || e.entitlement_type || '"'
    -- the stored jsonb, minus the code for callers that may not see it ("-" fails on a scalar)
    || COALESCE(',"entitlementSpecification":' || NULLIF(NULLIF(
            CASE WHEN h.codes OR jsonb_typeof(e.specification) <> 'object' THEN e.specification
                 ELSE e.specification - 'activationCode' END,
            'null'::jsonb), '{{}}'::jsonb)::text, '')
    || ',"entitlementStatus":"' || e.status || '"'
    || COALESCE(',"urlStatuses":[' || NULLIF(array_to_string(ARRAY(
            SELECT '{{"portal":' || COALESCE(to_json(p.portal_id)::text, 'null')
                || ',"urlStatus":"' || u.status || '"}}'
            FROM {EntitlementUrlStatus._meta.db_table} u
            JOIN {Party._meta.db_table} p ON p.id = u.portal_id
            WHERE u.entitlement_id = e.id
            ORDER BY p.portal_id), ','), '') || ']', '')
    -- to_json writes a timestamp as ISO 8601 whatever the DateStyle: 2026-08-02T07:30:15
    || ',"dateCreated":'
    || left(to_json(date_trunc('second', e.date_created AT TIME ZONE 'UTC'))::text, -1)
    || 'Z","dateLastModified":'
    || left(to_json(date_trunc('second', e.date_last_modified AT TIME ZONE 'UTC'))::text, -1)
    || 'Z"}}'
FROM {Entitlement._meta.db_table} e
JOIN unnest(%s::bigint[], %s::text[], %s::boolean[]) AS h(order_pk, head, codes)
    ON h.order_pk = e.delivery_order_id
ORDER BY e.delivery_order_id, e.id
"""  # noqa: S608 (table names from the models; values are parameters)
