"""Receiving confirmations and activations: one durable INSERT, then a wake-up after commit.

Nothing else happens in the request: no lookups of entitlements or messages (the worker does
those in bulk). A repeated receive id from the same sender is a no-op (``ON CONFLICT DO
NOTHING`` on the unique (sender, kind, receive_id)).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from aanspraak.models import Client, Party
from confirmations.models import Confirmation, ConfirmationKind
from entitlements.statuses import EntitlementStatus

from .wake import wake_workers


def _store(row: Confirmation) -> None:
    with transaction.atomic():
        Confirmation.objects.bulk_create([row], ignore_conflicts=True)
        transaction.on_commit(wake_workers)


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
    """Store a validated entitlement confirmation (seed 003) as pending."""
    _store(
        Confirmation(
            sender=sender,
            client=client,
            kind=ConfirmationKind.CONFIRMATION,
            receive_id=receive_id,
            reference_id=reference_id,
            entitlement_ref=entitlement_id,
            product_id=product_id,
            processed_timestamp=processed_timestamp,
            new_entitlement_status=new_entitlement_status,
            url_portal=url_portal,
            new_url_status=new_url_status,
            body=body,
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
    """Store a validated initial activation (DESIGN.md §3.4a) as a pending ``licensed``."""
    _store(
        Confirmation(
            sender=sender,
            client=client,
            kind=ConfirmationKind.ACTIVATION,
            receive_id=activation_reference_id,
            entitlement_ref=entitlement_id,
            product_id=product_id,
            processed_timestamp=activation_timestamp,
            new_entitlement_status=EntitlementStatus.LICENSED,
            body=body,
        )
    )
