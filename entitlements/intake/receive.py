"""The intake service: ``receive_delivery_order``."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError

from aanspraak.models import Party
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderIntake,
)

from .parse import ParsedOrder, parse_delivery_order
from .repeats import cancel_order, repeat, resend_unchanged
from .results import IntakeResult
from .store import store_new_order


def receive_delivery_order(seller: Party, body: Any) -> IntakeResult:
    """Handle one ``PUT /deliveryorders`` body from ``seller``. Raises IntakeError (nothing
    stored) for bad input."""
    parsed = parse_delivery_order(body)
    for attempt in (1, 2):
        try:
            return _receive(seller, parsed, body)
        except IntegrityError:
            # A concurrent request with the same reference or order id won the race (or, in
            # theory, an activation code collided): the second pass sees its rows.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _receive(seller: Party, parsed: ParsedOrder, body: dict) -> IntakeResult:
    intake = (
        DeliveryOrderIntake.objects.select_related("delivery_order__product")
        .filter(seller=seller, reference_id=parsed.reference_id)
        .first()
    )
    if intake is not None:
        return repeat(intake)
    if parsed.is_cancel:
        return cancel_order(seller, parsed, body)
    existing = (
        DeliveryOrder.objects.select_related("product")
        .filter(seller=seller, delivery_order_id=parsed.delivery_order_id)
        .first()
    )
    if existing is not None:
        return resend_unchanged(seller, parsed, existing, body)
    return store_new_order(seller, parsed, body)
