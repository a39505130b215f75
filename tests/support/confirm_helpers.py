"""Builders of confirmation bodies and rows shared by the confirmation tests."""

from __future__ import annotations

import datetime as dt
import uuid

from entitlements.models import Entitlement, OutboundMessage
from entitlements.statuses import MessageKind

T0 = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def request_to(entitlement: Entitlement, recipient) -> OutboundMessage:
    """The (first) Entitlement request the hub sent ``recipient`` for ``entitlement``."""
    return (
        OutboundMessage.objects.filter(entitlement=entitlement, recipient=recipient)
        .order_by("id")
        .first()
    )


def propose(entitlement: Entitlement, recipient, *, status=None, url_status=None, end_date=None):
    """A further request of the hub (e.g. a cancel proposal) to ``recipient``."""
    return OutboundMessage.objects.create(
        kind=MessageKind.ENTITLEMENT_REQUEST,
        recipient=recipient,
        entitlement=entitlement,
        proposed_entitlement_status=status,
        proposed_url_status=url_status,
        proposed_end_date=end_date,
    )


def _confirmation(message: OutboundMessage, at: dt.datetime, receive_id: str | None) -> dict:
    """The fields every confirmation of ``message`` carries (seed 003)."""
    entitlement = message.entitlement
    return {
        "entitlementReferenceId": str(message.reference_id),
        "entitlementReceiveId": receive_id or f"rcv-{uuid.uuid4().hex[:12]}",
        "entitlementId": str(entitlement.entitlement_id),
        "productId": entitlement.delivery_order.product.product_id,
        "processedTimestamp": iso(at),
    }


def licensor_body(
    message: OutboundMessage, status: str = "entitled", *, at: dt.datetime = T0, receive_id=None
) -> dict:
    return {**_confirmation(message, at, receive_id), "newEntitlementStatus": status}


def portal_body(
    message: OutboundMessage, status: str = "processed", *, at: dt.datetime = T0, receive_id=None
) -> dict:
    url_status = {"portal": message.recipient.portal_id, "urlStatus": status}
    return {**_confirmation(message, at, receive_id), "newUrlStatus": url_status}


def activation_body(entitlement: Entitlement, *, user=None, at: dt.datetime = T0, ref=None):
    order = entitlement.delivery_order
    return {
        "initialActivationReferenceId": ref or f"act-{uuid.uuid4().hex[:12]}",
        "entitlementId": str(entitlement.entitlement_id),
        "productId": order.product.product_id,
        "entitlementType": entitlement.entitlement_type,
        "school": {"organisationMasterIdentifier": order.school.organisation_master_identifier},
        "user": user or {"userMasterIdentifier": f"https://ketenid.nl/201703/{uuid.uuid4().hex}"},
        "activationTimestamp": iso(at),
    }


def store(sender, body: dict) -> None:
    """Receive ``body`` from ``sender`` exactly as the API does (validation included)."""
    from confirmations.api.serializers import ActivationSerializer, ConfirmationSerializer
    from confirmations.services.receive import receive_activation, receive_confirmation

    if "initialActivationReferenceId" in body:
        data = ActivationSerializer(data=body)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        receive_activation(
            sender=sender,
            client=None,
            body=body,
            activation_reference_id=v["initialActivationReferenceId"],
            entitlement_id=v["entitlementId"],
            product_id=v["productId"],
            activation_timestamp=v["activationTimestamp"],
        )
        return
    data = ConfirmationSerializer(data=body)
    data.is_valid(raise_exception=True)
    v = data.validated_data
    url = v.get("newUrlStatus")
    receive_confirmation(
        sender=sender,
        client=None,
        body=body,
        reference_id=v["entitlementReferenceId"],
        receive_id=v["entitlementReceiveId"],
        entitlement_id=v["entitlementId"],
        product_id=v["productId"],
        processed_timestamp=v["processedTimestamp"],
        new_entitlement_status=v.get("newEntitlementStatus"),
        url_portal=(url.get("portal") or sender.portal_id) if url else None,
        new_url_status=url["urlStatus"] if url else None,
    )
