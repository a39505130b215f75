"""Receiving confirmations and activations: one durable INSERT, then a wake-up after commit.

Nothing else happens in the request: no lookups of entitlements or messages (the worker does
those in bulk). A repeated receive id from the same sender is a no-op (``ON CONFLICT DO
NOTHING`` on the unique (sender, kind, receive_id)).

The INSERT is one statement run in autocommit (outside any ``atomic`` block it is its own
transaction, committed when ``execute`` returns): no model instance, no ORM query
compilation, no BEGIN/COMMIT round trips per request (docs/confirmations.md). On PostgreSQL
its values are bound on the server and the statement is prepared once per connection
(``DATABASE_PREPARED_STATEMENTS``, docs/operations.md): no quoting of a dozen values in
Python, no parsing and planning per request (docs/performance.md, P2).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from aanspraak.models import Client, Party
from aanspraak.request_ids import current_request_id
from confirmations.models import Confirmation, ConfirmationKind, ConfirmationState
from entitlements.statuses import EntitlementStatus

from .wake import request_wake

# The columns the request writes; every other column has no value yet (worker-owned).
_COLUMNS = (
    "sender",
    "client",
    "kind",
    "receive_id",
    "reference_id",
    "entitlement_ref",
    "product_id",
    "processed_timestamp",
    "new_entitlement_status",
    "url_portal",
    "new_url_status",
    "body",
    "state",
    "reason",
    "received_at",
    "request_id",
)
_FIELDS = tuple(Confirmation._meta.get_field(name) for name in _COLUMNS)
# Only these need the backend's adaptation (JSON, date-times); ids and strings pass as they
# are, which spares a dozen get_db_prep_save calls per request.
_ADAPTED = frozenset(
    i for i, name in enumerate(_COLUMNS) if name in {"processed_timestamp", "body", "received_at"}
)


@cache
def _insert_sql(vendor: str) -> str:
    # Built from the model once per backend, so a renamed column cannot be missed here.
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _FIELDS)
    placeholders = ["%s"] * len(_FIELDS)
    # The client comes from the token cache: one deleted meanwhile by another process is
    # stored as NULL (what its on_delete=SET_NULL would have made of the row), not a 500.
    client = Confirmation._meta.get_field("client").related_model._meta
    placeholders[_COLUMNS.index("client")] = (
        f"(SELECT {quote(client.pk.column)} FROM {quote(client.db_table)} "  # noqa: S608
        f"WHERE {quote(client.pk.column)} = %s)"
    )
    # Only the model's own (quoted) names go into the text; every value is a parameter.
    return (
        f"INSERT INTO {quote(Confirmation._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(placeholders)}) ON CONFLICT DO NOTHING"
    )


def _insert_cursor():
    """A Django cursor for the INSERT: on PostgreSQL one that binds its values on the server
    (Django's own cursors bind them in Python, which cannot be prepared)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    # What connection.cursor() does first: the per-request health check, a live connection.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = ServerBindingCursor(connection.connection)
    # Through Django's wrapper: its error translation, and query logging where it is on.
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def _store(values: tuple) -> None:
    params = list(values)
    for i in _ADAPTED:
        params[i] = _FIELDS[i].get_db_prep_save(params[i], connection)
    with _insert_cursor() as cursor:
        cursor.execute(_insert_sql(connection.vendor), params)
    # Outside atomic this runs at once (the INSERT is committed); inside, after the commit.
    # Either way it only pokes the waker thread: the 202 never waits on Redis.
    transaction.on_commit(request_wake)


def receive_confirmation(
    *,
    sender: Party,
    client: Client | None,
    body: dict,
    reference_id: str,
    receive_id: str,
    entitlement_id: str,
    product_id: str,
    processed_timestamp: dt.datetime,
    new_entitlement_status: str | None,
    url_portal: str | None,
    new_url_status: str | None,
) -> None:
    """Store a validated entitlement confirmation (seed 003) as pending, with the current
    request's id; durable on return."""
    _store(
        (
            sender.pk,
            client.pk if client is not None else None,
            ConfirmationKind.CONFIRMATION.value,
            receive_id,
            reference_id,
            entitlement_id,
            product_id,
            processed_timestamp,
            new_entitlement_status,
            url_portal,
            new_url_status,
            body,
            ConfirmationState.PENDING.value,
            "",
            timezone.now(),
            current_request_id(),
        )
    )


def receive_activation(
    *,
    sender: Party,
    client: Client | None,
    body: dict,
    activation_reference_id: str,
    entitlement_id: str,
    product_id: str,
    activation_timestamp: dt.datetime,
) -> None:
    """Store a validated initial activation (docs/confirmations.md) as a pending
    ``licensed``; durable on return."""
    _store(
        (
            sender.pk,
            client.pk if client is not None else None,
            ConfirmationKind.ACTIVATION.value,
            activation_reference_id,
            "",
            entitlement_id,
            product_id,
            activation_timestamp,
            EntitlementStatus.LICENSED.value,
            None,
            None,
            body,
            ConfirmationState.PENDING.value,
            "",
            timezone.now(),
            current_request_id(),
        )
    )
