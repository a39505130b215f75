"""Repeats and cancellations: the same reference again, the same order again unchanged,
and ``"status": "cancelled"`` (docs/delivery.md)."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from aanspraak.models import Party
from entitlements import outbox
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderIntake,
    OutboundMessage,
)
from entitlements.services.cancel import cancel_unresolved, propose_end
from entitlements.statuses import (
    DeliveryOrderStatus,
    EntitlementStatus,
    EventCause,
    MessageKind,
)

from .parse import ParsedOrder
from .results import IntakeError, IntakeResult
from .store import confirmation_body, queue_confirmation


def repeat(intake: DeliveryOrderIntake) -> IntakeResult:
    """A repeated deliveryOrderReferenceId: nothing is processed again; the confirmation to
    the seller is queued once more (a new message with the same body)."""
    order = intake.delivery_order
    previous = (
        OutboundMessage.objects.filter(intake=intake, kind=MessageKind.DELIVERYORDER_CONFIRMATION)
        .order_by("id")
        .first()
    )
    with transaction.atomic():
        if previous is not None:
            queue_confirmation(intake, order, previous.body)
        outbox.wake_after_commit({order.seller_id})
    return IntakeResult.repeat(intake, order, previous.body if previous is not None else {})


def resend_unchanged(
    seller: Party, parsed: ParsedOrder, order: DeliveryOrder, body: dict
) -> IntakeResult:
    """The same order again under a new reference id: record it and confirm again."""
    first = order.intakes.filter(action=DeliveryOrderIntake.Action.ORDER).order_by("id").first()
    if first is None or _canonical(first.body.get("deliveryOrder")) != _canonical(parsed.raw_order):
        raise IntakeError(
            [
                f"deliveryOrder.deliveryOrderId: delivery order {order.delivery_order_id} "
                "already exists with different content; a delivery order cannot be changed: "
                'cancel it ("status": "cancelled" with an endDate) and send a new one'
            ]
        )
    now = timezone.now()
    with transaction.atomic():
        intake = DeliveryOrderIntake.objects.create(
            seller=seller,
            reference_id=parsed.reference_id,
            delivery_order=order,
            action=DeliveryOrderIntake.Action.ORDER,
            body=body,
        )
        total = order.entitlements.count()
        confirmation = confirmation_body(
            intake,
            order,
            new_status=(
                "cancelled" if order.status == DeliveryOrderStatus.CANCELLED else "processed"
            ),
            total=total,
            message=f"delivery order already received: {total} entitlements",
            now=now,
        )
        queue_confirmation(intake, order, confirmation)
        outbox.wake_after_commit({seller.id})
    return IntakeResult.repeat(intake, order, confirmation)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def cancel_order(seller: Party, parsed: ParsedOrder, body: dict) -> IntakeResult:
    now = timezone.now()
    with transaction.atomic():
        order = (
            DeliveryOrder.objects.select_for_update(of=("self",))
            .select_related("product")
            .filter(seller=seller, delivery_order_id=parsed.delivery_order_id)
            .first()
        )
        if order is None:
            raise IntakeError(
                [
                    f"deliveryOrder.deliveryOrderId: no delivery order {parsed.delivery_order_id}"
                    " of this seller to cancel"
                ]
            )
        if parsed.product_id is not None and parsed.product_id != order.product.product_id:
            raise IntakeError(
                [
                    f"deliveryOrder.productId: delivery order {order.delivery_order_id} is for "
                    f"product {order.product.product_id}, not {parsed.product_id}"
                ]
            )
        intake = DeliveryOrderIntake.objects.create(
            seller=seller,
            reference_id=parsed.reference_id,
            delivery_order=order,
            action=DeliveryOrderIntake.Action.CANCEL,
            body=body,
        )
        if order.status == DeliveryOrderStatus.CANCELLED:
            return _cancel_again(intake, order)
        proposal = propose_end(
            order.entitlements.all(),
            EntitlementStatus.CANCELLED,
            parsed.end_date,
            EventCause.INTAKE,
        )
        order.status = DeliveryOrderStatus.CANCELLED
        order.end_date = parsed.end_date
        order.save(update_fields=["status", "end_date", "updated_at"])
        # Students whose enrollment never resolved were sent to no one: the hub cancels
        # them itself (under this order lock, so the resolver cannot release them after).
        unresolved = cancel_unresolved([order.pk], now)
        licensed = proposal.licensed
        cancelled = proposal.proposed + unresolved
        new_status = "cancelled" if cancelled or not licensed else "licensed"
        message = (
            f"{proposal.proposed} entitlements proposed cancelled with endDate "
            f"{order.end_date}"
            + (f", {unresolved} never sent cancelled by the hub" if unresolved else "")
            + f"; {licensed} already licensed and not cancelled"
        )
        out = confirmation_body(
            intake, order, new_status=new_status, total=licensed, message=message, now=now
        )
        out["cancelledQuantity"] = cancelled
        out["licensedQuantity"] = licensed
        queue_confirmation(intake, order, out)
        outbox.wake_after_commit({seller.id, *proposal.recipients})
    return IntakeResult(
        parsed.reference_id,
        intake.receive_id,
        order.delivery_order_id,
        order.product.product_id,
        intake.action,
        repeated=False,
        total_quantity=licensed,
        cancelled_quantity=cancelled,
        licensed_quantity=licensed,
    )


def _cancel_again(intake: DeliveryOrderIntake, order: DeliveryOrder) -> IntakeResult:
    """A cancellation of an order that is already cancelled (a new reference id): nothing
    is proposed again and the seller gets the outcome of the first cancellation again (its
    confirmation body, under this message's reference and receive ids), so the two answers
    never disagree. Called inside cancel_order's transaction."""
    first = (
        OutboundMessage.objects.filter(
            delivery_order=order,
            kind=MessageKind.DELIVERYORDER_CONFIRMATION,
            intake__action=DeliveryOrderIntake.Action.CANCEL,
        )
        .order_by("id")
        .first()
    )
    body = dict(first.body) if first is not None else {}
    body["deliveryOrderReferenceId"] = intake.reference_id
    body["deliveryOrderReceiveId"] = str(intake.receive_id)
    queue_confirmation(intake, order, body)
    outbox.wake_after_commit({order.seller_id})
    return IntakeResult.repeat(intake, order, body)
