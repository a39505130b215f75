"""What intake answers: the refusal (``IntakeError``) and the 202 (``IntakeResult``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aanspraak.choices import FunctionalCode
from entitlements.models import (
    DeliveryOrder,
    DeliveryOrderIntake,
)

from .contract import MAX_PROBLEMS_SHOWN


class IntakeError(Exception):
    """The message is refused; nothing was stored. ``code`` is the chain's functional code."""

    def __init__(self, problems: list[str], code: FunctionalCode = FunctionalCode.SCHEMA_INCORRECT):
        self.problems = problems
        self.code = code
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        message = "; ".join(shown) + (f"; and {more} more problems" if more > 0 else "")
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)


@dataclass
class IntakeResult:
    """What the 202 answer reports."""

    reference_id: str
    receive_id: uuid.UUID
    delivery_order_id: str
    product_id: str
    action: str
    repeated: bool
    total_quantity: int
    cancelled_quantity: int = 0
    licensed_quantity: int = 0

    @classmethod
    def repeat(cls, intake: DeliveryOrderIntake, order: DeliveryOrder, confirmation: dict):
        """The answer to a message that repeats an earlier one, whose seller confirmation
        (``confirmation``) is being sent again."""
        return cls(
            intake.reference_id,
            intake.receive_id,
            order.delivery_order_id,
            order.product.product_id,
            intake.action,
            repeated=True,
            total_quantity=confirmation.get("newTotalQuantity", 0),
            cancelled_quantity=confirmation.get("cancelledQuantity", 0),
            licensed_quantity=confirmation.get("licensedQuantity", 0),
        )

    def as_body(self) -> dict:
        body = {
            "deliveryOrderReferenceId": self.reference_id,
            "deliveryOrderReceiveId": str(self.receive_id),
            "deliveryOrderId": self.delivery_order_id,
            "productId": self.product_id,
            "action": self.action,
            "repeated": self.repeated,
            "totalQuantity": self.total_quantity,
        }
        if self.action == DeliveryOrderIntake.Action.CANCEL:
            body["cancelledQuantity"] = self.cancelled_quantity
            body["licensedQuantity"] = self.licensed_quantity
        return body
