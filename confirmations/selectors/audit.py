"""Who caused a status change (docs/security.md, "Audit").

A status event names its cause (``StatusEvent.cause``) and the row that caused it
(``cause_pk``, ``cause_ref``): a confirmation or activation, the hub's own delivery, an
intake (a seller's cancel) or the expiry. A change an admin asked for is a confirmation too:
the admin action proposed an end in an Entitlement request (``OutboundMessage``) that keeps
the staff user's name (``requested_by``), and the party's confirmation answers that request.
``origin_of`` follows that chain: event → confirmation → the request it answers → the user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from confirmations.models import Confirmation
from entitlements.models import DeliveryOrderIntake, OutboundMessage
from entitlements.statuses import EventCause


class CausedChange(Protocol):
    """A status event (read only: events are written by ``entitlements.status`` alone)."""

    cause: str
    cause_pk: int | None


@dataclass(frozen=True)
class Origin:
    """Where a status change came from. ``party`` is the party that confirmed, activated or
    ordered (empty for the hub's own delivery and the expiry); ``request`` the reference id of
    the hub's Entitlement request it answers or delivered; ``requested_by`` the staff user who
    asked for that request (empty when the hub made it itself); ``resent_by`` who last re-sent
    it."""

    cause: str
    party: str = ""
    request: str = ""
    requested_by: str = ""
    resent_by: str = ""


def origin_of(event: CausedChange) -> Origin:
    """The origin of ``event`` (a few queries: it is for looking one change up)."""
    cause = event.cause
    if cause in (EventCause.CONFIRMATION, EventCause.ACTIVATION):
        confirmation = (
            Confirmation.objects.select_related("sender", "message")
            .filter(pk=event.cause_pk)
            .first()
        )
        if confirmation is None:
            return Origin(cause)
        message = confirmation.message
        if message is None and confirmation.reference_id:
            message = OutboundMessage.objects.filter(
                reference_id=_uuid_or_none(confirmation.reference_id)
            ).first()
        return _with_request(Origin(cause, party=confirmation.sender.name), message)
    if cause == EventCause.DELIVERY:
        return _with_request(
            Origin(cause), OutboundMessage.objects.filter(pk=event.cause_pk).first()
        )
    if cause == EventCause.INTAKE:
        intake = (
            DeliveryOrderIntake.objects.select_related("seller").filter(pk=event.cause_pk).first()
        )
        return Origin(cause, party=intake.seller.name if intake else "")
    return Origin(cause)


def _with_request(origin: Origin, message: OutboundMessage | None) -> Origin:
    if message is None:
        return origin
    return Origin(
        origin.cause,
        party=origin.party,
        request=str(message.reference_id),
        requested_by=message.requested_by,
        resent_by=message.resent_by,
    )


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
