"""Checking a claimed batch: each confirmation against the Entitlement request it names,
each activation against its entitlement; the reasons of the rejected ones
(``services/apply.py``, step 2)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import NamedTuple

from confirmations.models import ConfirmationKind
from entitlements.models import Entitlement, OutboundMessage
from entitlements.statuses import (
    ACTIVATION_CODE_TYPES,
    MessageKind,
)

from .claim import ClaimedRow

log = logging.getLogger(__name__)


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


class _Request(NamedTuple):
    """An Entitlement request the hub sent, as the checks and the fold read it."""

    reference_id: uuid.UUID
    pk: int
    recipient: int
    recipient_portal_id: str | None
    entitlement: int
    entitlement_id: uuid.UUID
    product_id: str
    proposed_status: str | None
    proposed_url_status: str | None
    proposed_end_date: dt.date | None


REQUEST_FIELDS = (
    "reference_id",
    "id",
    "recipient_id",
    "recipient__portal_id",
    "entitlement_id",
    "entitlement__entitlement_id",
    "entitlement__delivery_order__product__product_id",
    "proposed_entitlement_status",
    "proposed_url_status",
    "proposed_end_date",
)


class _Activated(NamedTuple):
    """The entitlement an activation names, as its check reads it."""

    entitlement_id: uuid.UUID
    pk: int
    licensor: int
    product_id: str
    entitlement_type: str
    school_master: str | None
    user_master: str | None


ACTIVATED_FIELDS = (
    "entitlement_id",
    "id",
    "delivery_order__product__licensor_id",
    "delivery_order__product__product_id",
    "entitlement_type",
    "delivery_order__school__organisation_master_identifier",
    "user_master_identifier",
)


def check_batch(batch: list[ClaimedRow]) -> tuple[list[ClaimedRow], dict[int, str]]:
    """Resolve each confirmation to its request (or entitlement); return the accepted ones
    (with ``entitlement``/``message`` and the proposal set) and the reasons of the rejected
    ones."""
    reasons: dict[int, str] = {}
    confirmations = [c for c in batch if c.kind == ConfirmationKind.CONFIRMATION]
    activations = [c for c in batch if c.kind == ConfirmationKind.ACTIVATION]

    refs = {c.pk: _as_uuid(c.reference_id) for c in confirmations}
    wanted = {r for r in refs.values() if r is not None}
    messages = (
        {
            request.reference_id: request
            for request in map(
                _Request._make,
                OutboundMessage.objects.filter(
                    kind=MessageKind.ENTITLEMENT_REQUEST, reference_id__any=wanted
                ).values_list(*REQUEST_FIELDS),
            )
        }
        if wanted
        else {}
    )
    for row in confirmations:
        reason = _check_confirmation(row, messages.get(refs[row.pk]))
        if reason:
            reasons[row.pk] = reason

    entitlement_ids = {c.pk: _as_uuid(c.entitlement_ref) for c in activations}
    wanted = {i for i in entitlement_ids.values() if i is not None}
    entitlements = (
        {
            e.entitlement_id: e
            for e in map(
                _Activated._make,
                Entitlement.objects.filter(entitlement_id__any=wanted).values_list(
                    *ACTIVATED_FIELDS
                ),
            )
        }
        if wanted
        else {}
    )
    for row in activations:
        reason = _check_activation(row, entitlements.get(entitlement_ids[row.pk]))
        if reason:
            reasons[row.pk] = reason
    return [c for c in batch if c.pk not in reasons], reasons


def _check_confirmation(row: ClaimedRow, message: _Request | None) -> str:
    """Why ``row`` cannot be applied ("" if it can); sets its entitlement and request."""
    sender = row.sender_name
    ref = row.reference_id
    # Someone else's request answers exactly like a missing one: nothing leaks.
    if message is None or message.recipient != row.sender:
        return (
            f"entitlementReferenceId {ref} is not an Entitlement request the hub sent to {sender}"
        )
    if _as_uuid(row.entitlement_ref) != message.entitlement_id:
        return (
            f"entitlementReferenceId {ref} was sent for entitlementId "
            f"{message.entitlement_id}, not for {row.entitlement_ref}"
        )
    product = message.product_id
    if row.product_id != product:
        return (
            f"productId {row.product_id} does not match the product {product} of entitlement "
            f"{message.entitlement_id}"
        )
    if row.new_status and not message.proposed_status:
        return (
            f"newEntitlementStatus given, but the Entitlement request {ref} proposed no "
            f"entitlement status (it was sent to {sender} as a portal)"
        )
    if row.new_url_status:
        if not message.proposed_url_status:
            return (
                f"newUrlStatus given, but the Entitlement request {ref} proposed no URL status "
                f"(it was sent to {sender} as a licence registry)"
            )
        if row.url_portal != message.recipient_portal_id:
            return (
                f"newUrlStatus.portal {row.url_portal} is not the portal the Entitlement request "
                f"{ref} was sent to ({message.recipient_portal_id})"
            )
    row.entitlement, row.message = message.entitlement, message.pk
    row.proposed_status = message.proposed_status
    row.proposed_end_date = message.proposed_end_date
    row.proposed_url_status = message.proposed_url_status
    row.recipient = message.recipient
    return ""


def _check_activation(row: ClaimedRow, entitlement: _Activated | None) -> str:
    """Why activation ``row`` cannot be applied ("" if it can); sets its entitlement."""
    sender = row.sender_name
    if entitlement is None or entitlement.licensor != row.sender:
        return f"entitlementId {row.entitlement_ref} is not an entitlement of a product of {sender}"
    body = row.body or {}
    if row.product_id != entitlement.product_id:
        return (
            f"productId {row.product_id} does not match the product {entitlement.product_id} "
            f"of entitlement {entitlement.entitlement_id}"
        )
    if body.get("entitlementType") != entitlement.entitlement_type:
        return (
            f"entitlementType {body.get('entitlementType')} does not match the type "
            f"{entitlement.entitlement_type} of entitlement {entitlement.entitlement_id}"
        )
    master = (body.get("school") or {}).get("organisationMasterIdentifier")
    if master and entitlement.school_master not in (None, master):
        return (
            f"school.organisationMasterIdentifier {master} is not the school of entitlement "
            f"{entitlement.entitlement_id}"
        )
    user_master = (body.get("user") or {}).get("userMasterIdentifier")
    if (
        entitlement.entitlement_type not in ACTIVATION_CODE_TYPES
        and user_master
        and entitlement.user_master
        and user_master != entitlement.user_master
    ):
        return (
            f"user.userMasterIdentifier does not match the user of entitlement "
            f"{entitlement.entitlement_id}"
        )
    row.entitlement = entitlement.pk
    return ""
