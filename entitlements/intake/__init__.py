"""Intake of delivery orders: ``PUT /deliveryorders`` (docs/delivery.md).

``parse`` (no database) → ``resolve`` (the registry) → ``store`` (a new order) or
``repeats`` (the same message or order again, cancellations); ``receive`` ties them together.

A message is validated completely before anything is read from or written to the database;
every problem names the field (``deliveryOrder.deliverySpecification.students[3]...``).
Then, in one transaction, the order, its entitlements (status ``created``), their URL
statuses (``uninitialized``, one per portal), the Entitlement requests to the licensor and
portals and the confirmation to the seller are stored with bulk inserts (COPY on
PostgreSQL). Sending happens after commit, in the dispatch workers.

Idempotency: the key is (seller, ``deliveryOrderReferenceId``). A repeated key is not
processed again; the confirmation to the seller is sent again. The same ``deliveryOrderId``
with a new key is accepted only unchanged (a re-send: confirmation again) or with
``"status": "cancelled"`` (a cancellation); any other change is refused.
"""

from .parse import ParsedOrder, parse_delivery_order
from .receive import receive_delivery_order
from .results import IntakeError, IntakeResult

__all__ = [
    "IntakeError",
    "IntakeResult",
    "ParsedOrder",
    "parse_delivery_order",
    "receive_delivery_order",
]
