"""An entitlement's timeline: its story in time order for the support desk
(docs/support-desk.md, "Timeline").

The intake of its order, the entitlement's creation, every message the hub sent about it (and
the order's confirmations to the seller) with each delivery attempt and re-send, every
confirmation and activation received for it (with its outcome, and who re-queued it), and
every status event with its cause: the party that confirmed, and the staff user when the
confirmation answers a request an admin proposed (docs/security.md, "Audit").

Six queries whatever the length of the history: the entitlement with its order, seller,
school, product and licensor; the order's intakes; the messages; their attempts; the
confirmations; the status events. The rows are merged and sorted in Python. Causes are
resolved in memory from the rows already loaded (``audit.origin_of`` does the same for one
event, with queries of its own).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from django.db.models import Q
from django.utils import timezone

from confirmations.models import Confirmation, ConfirmationKind, ConfirmationState
from entitlements.models import (
    DeliveryAttempt,
    DeliveryOrder,
    DeliveryOrderIntake,
    Entitlement,
    OutboundMessage,
)
from entitlements.rules.transitions import Outcome
from entitlements.statuses import EventCause, MessageKind


class Kind(IntEnum):
    """What a row is; the value breaks ties between rows of the same moment (an intake comes
    before the entitlement it created, a confirmation before the event it caused)."""

    INTAKE = 0
    CREATED = 1
    MESSAGE = 2
    ATTEMPT = 3
    RESEND = 4
    CONFIRMATION = 5
    REQUEUE = 6
    EVENT = 7

    @property
    def label(self) -> str:
        """The kind in words, as the page shows it."""
        return self.name.lower()


@dataclass(frozen=True)
class Link:
    """A link to a row's admin page: ``model`` as ``app_label.model_name``."""

    text: str
    model: str
    pk: int


@dataclass(frozen=True)
class Row:
    """One moment of the story. ``who`` is a party or a staff user, ``reference`` the id the
    chain knows it by (entitlementReferenceId, entitlementReceiveId, deliveryOrderReferenceId),
    ``outcome`` a confirmation's outcome, a message's state or an attempt's result."""

    at: dt.datetime
    kind: Kind
    pk: int
    what: str
    who: str = ""
    reference: str = ""
    outcome: str = ""
    detail: str = ""
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """The entitlement (with its order, seller, school, product and licensor loaded) and its
    rows in time order."""

    entitlement: Entitlement
    order: DeliveryOrder
    rows: list[Row]


def entitlement_timeline(entitlement_pk: int) -> Timeline | None:
    """The timeline of the entitlement with primary key ``entitlement_pk`` (None if there is
    none), in six queries whatever its history's length."""
    entitlement = (
        Entitlement.objects.select_related(
            "delivery_order__seller", "delivery_order__school", "delivery_order__product__licensor"
        )
        .filter(pk=entitlement_pk)
        .first()
    )
    if entitlement is None:
        return None
    order = entitlement.delivery_order
    intakes = {
        i.pk: i
        for i in DeliveryOrderIntake.objects.filter(delivery_order_id=order.pk)
        .select_related("seller")
        .defer("body")
    }
    messages = {
        m.pk: m
        for m in OutboundMessage.objects.filter(
            Q(entitlement_id=entitlement.pk)
            | Q(kind=MessageKind.DELIVERYORDER_CONFIRMATION, delivery_order_id=order.pk)
        )
        .select_related("recipient")
        .defer("body")
    }
    attempts = list(DeliveryAttempt.objects.filter(message_id__in=list(messages)))
    # A rejected or pending confirmation has no entitlement yet: found by the entitlementId
    # it gave (confirmation_rejected_ref_idx; the pending ones by their partial index).
    as_received = [str(entitlement.entitlement_id), str(entitlement.entitlement_id).upper()]
    confirmations = {
        c.pk: c
        for c in Confirmation.objects.filter(
            Q(entitlement_id=entitlement.pk)
            | Q(state=Outcome.REJECTED, entitlement_ref__in=as_received)
            | Q(state=ConfirmationState.PENDING, entitlement_ref__in=as_received)
        )
        .select_related("sender")
        .defer("body")
    }
    # Through the entitlement's own relation: events are read here, written by
    # entitlements.status alone.
    events = list(entitlement.events.select_related("portal"))

    rows = [
        *_intake_rows(intakes.values()),
        _created_row(entitlement),
        *_message_rows(messages.values()),
        *_attempt_rows(attempts, messages),
        *_confirmation_rows(confirmations.values(), messages),
        *(_event_row(e, intakes, messages, confirmations) for e in events),
    ]
    rows.sort(key=lambda r: (r.at, r.kind, r.pk))
    return Timeline(entitlement, order, rows)


def _local(moment: dt.datetime) -> str:
    """A moment in the hub's time zone, as the page's "when" column shows it."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S}"


def _chain(moment: dt.datetime) -> str:
    """A moment as the chain writes it (UTC, ``Z``), for the parties' own timestamps."""
    return f"{moment.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


def _intake_rows(intakes: Iterable[DeliveryOrderIntake]) -> Iterable[Row]:
    for intake in intakes:
        yield Row(
            intake.received_at,
            Kind.INTAKE,
            intake.pk,
            f"Delivery order received from the seller ({intake.action})",
            who=intake.seller.name,
            reference=intake.reference_id,
            links=(
                Link("order", "entitlements.deliveryorder", intake.delivery_order_id),
                Link("intake", "entitlements.deliveryorderintake", intake.pk),
                Link(intake.seller.name, "aanspraak.party", intake.seller_id),
            ),
        )


def _created_row(entitlement: Entitlement) -> Row:
    return Row(
        entitlement.date_created,
        Kind.CREATED,
        entitlement.pk,
        f"Entitlement created ({entitlement.entitlement_type})",
        reference=str(entitlement.entitlement_id),
    )


def _proposal(message: OutboundMessage) -> str:
    parts = []
    if message.proposed_entitlement_status:
        parts.append(f"status {message.proposed_entitlement_status}")
    if message.proposed_url_status:
        parts.append(f"URL status {message.proposed_url_status}")
    if message.proposed_end_date:
        parts.append(f"endDate {message.proposed_end_date:%Y-%m-%d}")
    return ", ".join(parts)


def _message_rows(messages: Iterable[OutboundMessage]) -> Iterable[Row]:
    for m in messages:
        recipient = m.recipient.name
        links = (
            Link("message", "entitlements.outboundmessage", m.pk),
            Link(recipient, "aanspraak.party", m.recipient_id),
        )
        if m.kind == MessageKind.DELIVERYORDER_CONFIRMATION:
            what = "Delivery-order confirmation to the seller"
        else:
            what = f"Entitlement request proposing {_proposal(m)}"
        if m.requested_by:
            what += f", proposed by {m.requested_by}"
        detail = f"{m.attempt_count} attempt(s) in this round"
        if m.delivered_at:
            detail += f"; delivered {_local(m.delivered_at)}"
        if m.last_error:
            detail += f"; last error: {m.last_error}"
        yield Row(
            m.created_at,
            Kind.MESSAGE,
            m.pk,
            what,
            who=m.requested_by or recipient,
            reference=str(m.reference_id),
            outcome=m.state,
            detail=f"to {recipient}; {detail}",
            links=links,
        )
        if m.resent_by:
            # A re-send sets queued_at afresh: the time of the last one.
            yield Row(
                m.queued_at,
                Kind.RESEND,
                m.pk,
                f"Re-sent by {m.resent_by}",
                who=m.resent_by,
                reference=str(m.reference_id),
                detail=f"to {recipient}",
                links=links[:1],
            )


def _attempt_rows(
    attempts: Iterable[DeliveryAttempt], messages: dict[int, OutboundMessage]
) -> Iterable[Row]:
    for a in attempts:
        message = messages[a.message_id]
        result = f"HTTP {a.http_status}" if a.http_status else "no HTTP answer"
        yield Row(
            a.started_at,
            Kind.ATTEMPT,
            a.pk,
            "Delivery attempt",
            who=message.recipient.name,
            reference=str(message.reference_id),
            outcome=a.outcome,
            detail=f"{result} in {a.duration_ms} ms" + (f": {a.error}" if a.error else ""),
            links=(Link("message", "entitlements.outboundmessage", message.pk),),
        )


def _asked(c: Confirmation) -> str:
    if c.new_entitlement_status and c.kind == ConfirmationKind.ACTIVATION:
        return "Activation (licensed)"
    if c.new_entitlement_status:
        return f"Confirmation: newEntitlementStatus {c.new_entitlement_status}"
    return f"Confirmation: newUrlStatus {c.new_url_status} at {c.url_portal}"


def _confirmation_rows(
    confirmations: Iterable[Confirmation], messages: dict[int, OutboundMessage]
) -> Iterable[Row]:
    for c in confirmations:
        links = [
            Link("confirmation", "confirmations.confirmation", c.pk),
            Link(c.sender.name, "aanspraak.party", c.sender_id),
        ]
        detail = f"processedTimestamp {_chain(c.processed_timestamp)}"
        message = messages.get(c.message_id) if c.message_id else None
        if message is not None:
            detail += f"; answers request {message.reference_id}"
            if message.requested_by:
                detail += f" (proposed by {message.requested_by})"
            links.append(Link("request", "entitlements.outboundmessage", message.pk))
        elif c.reference_id:
            detail += f"; names request {c.reference_id}"
        if c.reason:
            detail += f"; reason: {c.reason}"
        yield Row(
            c.received_at,
            Kind.CONFIRMATION,
            c.pk,
            _asked(c),
            who=c.sender.name,
            reference=c.receive_id,
            outcome=c.state,
            detail=detail,
            links=tuple(links),
        )
        if c.requeued_at:
            yield Row(
                c.requeued_at,
                Kind.REQUEUE,
                c.pk,
                f"Re-queued by {c.requeued_by}" if c.requeued_by else "Re-queued",
                who=c.requeued_by,
                reference=c.receive_id,
                links=tuple(links[:1]),
            )


def _event_row(event, intakes, messages, confirmations) -> Row:
    what = (
        f"URL status at {event.portal.name}: {event.from_status or '-'} → {event.to_status}"
        if event.portal_id
        else f"Status {event.from_status or '-'} → {event.to_status}"
    )
    who, cause, links = _cause(event, intakes, messages, confirmations)
    return Row(
        event.recorded_at,
        Kind.EVENT,
        event.pk,
        what,
        who=who,
        reference=event.cause_ref,
        detail=f"cause: {cause}; effective {_local(event.effective_at)}",
        links=links,
    )


def _cause(event, intakes, messages, confirmations) -> tuple[str, str, tuple[Link, ...]]:
    """Who caused ``event``, the cause in words and links, from the rows already loaded."""
    cause = event.cause
    if cause in (EventCause.CONFIRMATION, EventCause.ACTIVATION):
        c = confirmations.get(event.cause_pk)
        if c is None:
            return "", f"{cause} {event.cause_ref}", ()
        links = (Link(cause, "confirmations.confirmation", c.pk),)
        message = messages.get(c.message_id) if c.message_id else None
        text = f"{cause} {c.receive_id} from {c.sender.name}"
        if message is not None and message.requested_by:
            who = message.requested_by
            text += f", answering request {message.reference_id} proposed by {who}"
            return f"{who} (confirmed by {c.sender.name})", text, links
        return c.sender.name, text, links
    if cause == EventCause.DELIVERY:
        message = messages.get(event.cause_pk)
        if message is None:
            return "hub", f"delivery {event.cause_ref}", ()
        text = f"delivery of request {message.reference_id} to {message.recipient.name}"
        return "hub", text, (Link("message", "entitlements.outboundmessage", message.pk),)
    if cause == EventCause.INTAKE:
        intake = intakes.get(event.cause_pk)
        if intake is None:
            return "", f"intake {event.cause_ref}", ()
        text = f"intake {intake.reference_id} ({intake.action}) from {intake.seller.name}"
        links = (Link("intake", "entitlements.deliveryorderintake", intake.pk),)
        return intake.seller.name, text, links
    if cause == EventCause.EXPIRY:
        return "hub", "expiry (the order's expirationDate passed)", ()
    return "", f"{cause} {event.cause_ref}".strip(), ()
