"""Rendering a claimed batch: the bodies the hub sends, encoded once."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass

import orjson
from django.db import connection

from aanspraak.models import Party
from aanspraak.outbound import Endpoint, SendResult, endpoint_for_party
from aanspraak.outbound.client import check_token
from aanspraak.timestamps import rfc3339
from entitlements.models import (
    EntitlementUrlStatus,
    OutboundMessage,
)
from entitlements.rules.documents import order_fields
from entitlements.statuses import MessageKind

from .claim import Claim

log = logging.getLogger(__name__)

ENTITLEMENTS_PATH = "entitlements"
CONFIRMATIONS_PATH = "deliveryorders/confirmations"


@dataclass(frozen=True, slots=True)
class Message:
    """What a batch keeps of a claimed message while it is sent and recorded: plain values
    from one query, no model instances (20,000 requests would build 100,000 of them)."""

    pk: int
    reference_id: uuid.UUID
    kind: str
    recipient_id: int
    entitlement_id: int | None
    proposed_url_status: str | None
    request_id: str | None = None  # of the request that created it: for the log line


# The columns a batch reads: the message, its entitlement and that entitlement's order.
_COLUMNS = (
    "id",
    "reference_id",
    "kind",
    "recipient_id",
    "entitlement_id",
    "proposed_url_status",
    "request_id",
    "proposed_entitlement_status",
    "proposed_end_date",
    "body",
    "entitlement__entitlement_id",
    "entitlement__entitlement_type",
    "entitlement__status",
    "entitlement__end_date",
    "entitlement__specification",
    "entitlement__date_created",
    "entitlement__date_last_modified",
    "entitlement__delivery_order_id",
    "entitlement__delivery_order__delivery_order_id",
    "entitlement__delivery_order__contract_id",
    "entitlement__delivery_order__product__product_id",
    "entitlement__delivery_order__start_date",
    "entitlement__delivery_order__activation_until_date",
    "entitlement__delivery_order__expiration_date",
)


def entitlement_body(
    row: dict, url_statuses: list[tuple[str, str]], portal_id: str | None, order: dict
) -> dict:
    """The Entitlement request body: ``{"entitlementReferenceId", "entitlement"}`` with the
    seed-002 Entitlement shape. To the licensor: the proposed ``entitlementStatus`` and the
    URL statuses at every portal (``url_statuses``: (portalId, status) in portalId order). To
    a portal (``portal_id``): its own URL status, proposed; activation codes are left out
    (only the seller and licensor see them). ``order``: the fields from the delivery order
    (``order_fields``), shared by the batch's messages of one order."""
    proposed_url_status = row["proposed_url_status"]
    spec = dict(row["entitlement__specification"] or {})
    if proposed_url_status is not None:
        spec.pop("activationCode", None)
        urls = [{"portal": portal_id, "urlStatus": proposed_url_status}]
    else:
        urls = [{"portal": portal, "urlStatus": status} for portal, status in url_statuses]
    body: dict = {"entitlementId": str(row["entitlement__entitlement_id"]), **order}
    end_date = row["proposed_end_date"] or row["entitlement__end_date"]
    if end_date:
        body["endDate"] = end_date.isoformat()
    body["entitlementType"] = row["entitlement__entitlement_type"]
    body["entitlementSpecification"] = spec
    body["entitlementStatus"] = row["proposed_entitlement_status"] or row["entitlement__status"]
    body["urlStatuses"] = urls
    body["dateCreated"] = rfc3339(row["entitlement__date_created"])
    body["dateLastModified"] = rfc3339(row["entitlement__date_last_modified"])
    return {"entitlementReferenceId": str(row["reference_id"]), "entitlement": body}


def _order_part(row: dict) -> dict:
    return order_fields(
        delivery_order_id=row["entitlement__delivery_order__delivery_order_id"],
        contract_id=row["entitlement__delivery_order__contract_id"],
        product_id=row["entitlement__delivery_order__product__product_id"],
        start_date=row["entitlement__delivery_order__start_date"],
        activation_until_date=row["entitlement__delivery_order__activation_until_date"],
        expiration_date=row["entitlement__delivery_order__expiration_date"],
    )


# The JSON columns of _COLUMNS, parsed by _rows itself on PostgreSQL.
_JSON_COLUMNS = [
    i for i, name in enumerate(_COLUMNS) if name in {"body", "entitlement__specification"}
]


def _rows(ids: list[int]) -> list[dict]:
    """The batch's messages with their entitlement and order, as dicts keyed by _COLUMNS.

    On PostgreSQL the queryset's SQL is run on a plain cursor: Django's per-row converters
    (``values()`` iteration was 14 % of a drain's GIL time) are skipped and the JSON columns,
    which Django's connection hands over as text, are parsed with orjson."""
    queryset = OutboundMessage.objects.filter(id__in=ids).order_by("id").values_list(*_COLUMNS)
    if connection.vendor != "postgresql":
        return [dict(zip(_COLUMNS, row, strict=True)) for row in queryset]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    rows = []
    for values in fetched:
        row = list(values)
        for i in _JSON_COLUMNS:
            if isinstance(row[i], str | bytes):
                row[i] = orjson.loads(row[i])
        rows.append(dict(zip(_COLUMNS, row, strict=True)))
    return rows


@dataclass
class Prepared:
    """A claimed batch, loaded and rendered: per message the endpoint, path and body (JSON
    bytes, rendered when sent and stored as sent), or an answer known without sending (the
    recipient's token could not be had)."""

    claim: Claim
    messages: list[Message]
    jobs: list[tuple[Endpoint, str, bytes]]
    known: dict[int, SendResult]


def prepare(claim: Claim) -> Prepared:
    """Load the claimed messages in three queries (messages with entitlement and order, the
    licensor requests' URL statuses, the recipients) and render their bodies."""
    rows = _rows(claim.ids)
    licensor_pks = [
        r["entitlement_id"]
        for r in rows
        if r["entitlement_id"] is not None and r["proposed_url_status"] is None
    ]
    url_statuses: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if licensor_pks:
        for entitlement_pk, portal_id, status in (
            EntitlementUrlStatus.objects.filter(entitlement_id__in=licensor_pks)
            .order_by("portal__portal_id")
            .values_list("entitlement_id", "portal__portal_id", "status")
        ):
            url_statuses[entitlement_pk].append((portal_id, status))
    parties = {p.pk: p for p in Party.objects.filter(pk__in={r["recipient_id"] for r in rows})}
    endpoints = {pk: endpoint_for_party(party) for pk, party in parties.items()}
    # One token check per endpoint and batch instead of one per request; when no token can
    # be had, every message of the batch gets that failed attempt without being sent.
    known_by_recipient = {pk: check_token(endpoint) for pk, endpoint in endpoints.items()}
    orders: dict[int, dict] = {}
    messages: list[Message] = []
    jobs: list[tuple[Endpoint, str, bytes]] = []
    known: dict[int, SendResult] = {}
    for row in rows:
        recipient_pk = row["recipient_id"]
        messages.append(
            Message(
                row["id"],
                row["reference_id"],
                row["kind"],
                recipient_pk,
                row["entitlement_id"],
                row["proposed_url_status"],
                row["request_id"],
            )
        )
        if row["kind"] == MessageKind.DELIVERYORDER_CONFIRMATION:
            path, body = CONFIRMATIONS_PATH, row["body"] or {}
        else:
            order_pk = row["entitlement__delivery_order_id"]
            if order_pk not in orders:
                orders[order_pk] = _order_part(row)
            path = ENTITLEMENTS_PATH
            body = entitlement_body(
                row,
                url_statuses.get(row["entitlement_id"], []),
                parties[recipient_pk].portal_id,
                orders[order_pk],
            )
        jobs.append((endpoints[recipient_pk], path, orjson.dumps(body)))
        if known_by_recipient[recipient_pk] is not None:
            known[len(jobs) - 1] = known_by_recipient[recipient_pk]
    return Prepared(claim, messages, jobs, known)
