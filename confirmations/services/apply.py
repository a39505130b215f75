"""The worker's side: claim pending confirmations in batches, check them, replay the affected
entitlements and write the result, set-based and with a constant number of queries per batch.

Per batch, in one transaction:
1. claim up to ``HUB_APPLY_BATCH_SIZE`` pending rows (``FOR UPDATE SKIP LOCKED``: workers
   never claim the same row);
2. check each against the Entitlement request it names (one query) or, for activations, the
   entitlement (one query); failures are ``rejected`` with a reason the sender can act on;
3. lock the affected entitlements, then their URL statuses (each ordered by id, the lock
   order of the expiry job too: no deadlocks), then load their delivered requests and all
   earlier accepted confirmations (four queries);
4. fold every affected entitlement from its base state (``confirmations.replay``);
5. write entitlements, URL statuses, status events and the confirmations' outcomes (four
   statements).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from confirmations.models import Confirmation, ConfirmationKind, ConfirmationState
from confirmations.replay import Event, expiry_event, fold
from entitlements.expiry_rules import expiry_moment, hub_tz, is_due
from entitlements.models import Entitlement, EntitlementUrlStatus, OutboundMessage
from entitlements.services.status import TargetState, write_states
from entitlements.statuses import (
    ACTIVATION_CODE_TYPES,
    EntitlementStatus,
    EventCause,
    MessageKind,
    MessageState,
    UrlStatus,
)
from entitlements.transitions import Decision

log = logging.getLogger(__name__)

ACCEPTED_STATES = [ConfirmationState.APPLIED, ConfirmationState.DUPLICATE, ConfirmationState.STALE]


@dataclass
class BatchResult:
    claimed: int = 0
    rejected: int = 0
    entitlements: int = 0
    events: int = 0


# Reason given to a confirmation whose application raised (a bug, or data the code does not
# expect): it is set aside so that it cannot block every batch behind it.
QUARANTINE_REASON = (
    "the hub could not apply this confirmation because of an internal error; it has been "
    "logged for the hub's support desk (confirmation {pk})"
)


def apply_all_pending(batch_size: int | None = None) -> int:
    """Apply batches until no unclaimed pending confirmation is left; the number claimed.

    A batch that raises is retried one confirmation at a time, so one that cannot be applied
    is set aside (rejected, with a reason naming it) instead of blocking all others. A lost
    database connection is not the confirmations' fault: it propagates, nothing is set aside,
    and the task is retried.
    """
    total = 0
    while True:
        try:
            result = apply_pending_batch(batch_size)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("a batch of confirmations failed; applying them one at a time")
            result = _apply_one_at_a_time(batch_size)
        total += result.claimed
        if not result.claimed:
            return total


def _apply_one_at_a_time(batch_size: int | None) -> BatchResult:
    """Apply the oldest pending confirmations each in its own transaction; set aside those
    that raise."""
    limit = batch_size or settings.HUB_APPLY_BATCH_SIZE
    ids = list(
        Confirmation.objects.filter(state=ConfirmationState.PENDING)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    total = BatchResult()
    for pk in ids:
        try:
            result = apply_pending_batch(1, only=pk)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("confirmation %s cannot be applied; set aside as rejected", pk)
            Confirmation.objects.filter(pk=pk, state=ConfirmationState.PENDING).update(
                state=ConfirmationState.REJECTED,
                reason=QUARANTINE_REASON.format(pk=pk),
                decided_at=timezone.now(),
            )
            result = BatchResult(claimed=1, rejected=1)
        total.claimed += result.claimed
        total.rejected += result.rejected
        total.entitlements += result.entitlements
        total.events += result.events
    return total


def apply_pending_batch(batch_size: int | None = None, only: int | None = None) -> BatchResult:
    """Claim, check and apply one batch of pending confirmations in one transaction (only the
    confirmation with primary key ``only``, when given)."""
    limit = batch_size or settings.HUB_APPLY_BATCH_SIZE
    pending = Confirmation.objects.filter(state=ConfirmationState.PENDING)
    if only is not None:
        pending = pending.filter(pk=only)
    with transaction.atomic():
        batch = list(
            pending.select_related("sender")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("id")[:limit]
        )
        if not batch:
            return BatchResult()
        log.info("claimed %d confirmations (%d..%d)", len(batch), batch[0].pk, batch[-1].pk)
        if settings.HUB_APPLY_BATCH_DELAY:
            time.sleep(settings.HUB_APPLY_BATCH_DELAY)  # test only: a window to kill us in
        now = timezone.now()
        accepted, reasons = _check(batch)
        result = _replay(accepted, now) if accepted else _Replayed()

        changed: list[Confirmation] = []
        for row in batch:
            if row.pk in reasons:
                row.state, row.reason = ConfirmationState.REJECTED, reasons[row.pk]
            else:
                decision = result.outcomes[row.pk]
                row.state, row.reason = decision.outcome.value, decision.reason
            row.decided_at = now
            changed.append(row)
        changed += result.redecided
        Confirmation.objects.bulk_update(
            changed, ["state", "reason", "decided_at", "entitlement", "message"]
        )
    log.info(
        "applied batch: %d confirmations, %d rejected, %d entitlements changed, %d events",
        len(batch),
        len(reasons),
        result.entitlements,
        result.events,
    )
    return BatchResult(len(batch), len(reasons), result.entitlements, result.events)


# --- checks -----------------------------------------------------------------------------


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def _check(batch: list[Confirmation]) -> tuple[list[Confirmation], dict[int, str]]:
    """Resolve each confirmation to its request (or entitlement); return the accepted ones
    (with ``entitlement``/``message`` set) and the reasons of the rejected ones."""
    reasons: dict[int, str] = {}
    confirmations = [c for c in batch if c.kind == ConfirmationKind.CONFIRMATION]
    activations = [c for c in batch if c.kind == ConfirmationKind.ACTIVATION]

    refs = {c.pk: _as_uuid(c.reference_id) for c in confirmations}
    messages = {
        m.reference_id: m
        for m in OutboundMessage.objects.filter(
            kind=MessageKind.ENTITLEMENT_REQUEST,
            reference_id__in={r for r in refs.values() if r is not None},
        ).select_related("recipient", "entitlement__delivery_order__product")
    }
    for row in confirmations:
        reason = _check_confirmation(row, messages.get(refs[row.pk]))
        if reason:
            reasons[row.pk] = reason

    entitlement_ids = {c.pk: _as_uuid(c.entitlement_ref) for c in activations}
    entitlements = (
        {
            e.entitlement_id: e
            for e in Entitlement.objects.filter(
                entitlement_id__in={i for i in entitlement_ids.values() if i is not None}
            ).select_related("delivery_order__product", "delivery_order__school")
        }
        if activations
        else {}
    )
    for row in activations:
        reason = _check_activation(row, entitlements.get(entitlement_ids[row.pk]))
        if reason:
            reasons[row.pk] = reason
    return [c for c in batch if c.pk not in reasons], reasons


def _check_confirmation(row: Confirmation, message: OutboundMessage | None) -> str:
    """Why ``row`` cannot be applied ("" if it can); sets its entitlement and message."""
    sender = row.sender.name
    ref = row.reference_id
    # Someone else's request answers exactly like a missing one: nothing leaks.
    if message is None or message.recipient_id != row.sender_id:
        return (
            f"entitlementReferenceId {ref} is not an Entitlement request the hub sent to {sender}"
        )
    entitlement = message.entitlement
    if _as_uuid(row.entitlement_ref) != entitlement.entitlement_id:
        return (
            f"entitlementReferenceId {ref} was sent for entitlementId "
            f"{entitlement.entitlement_id}, not for {row.entitlement_ref}"
        )
    product = entitlement.delivery_order.product.product_id
    if row.product_id != product:
        return (
            f"productId {row.product_id} does not match the product {product} of entitlement "
            f"{entitlement.entitlement_id}"
        )
    if row.new_entitlement_status and not message.proposed_entitlement_status:
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
        if row.url_portal != message.recipient.portal_id:
            return (
                f"newUrlStatus.portal {row.url_portal} is not the portal the Entitlement request "
                f"{ref} was sent to ({message.recipient.portal_id})"
            )
    row.entitlement, row.message = entitlement, message
    return ""


def _check_activation(row: Confirmation, entitlement: Entitlement | None) -> str:
    """Why activation ``row`` cannot be applied ("" if it can); sets its entitlement."""
    sender = row.sender.name
    if entitlement is None or entitlement.delivery_order.product.licensor_id != row.sender_id:
        return f"entitlementId {row.entitlement_ref} is not an entitlement of a product of {sender}"
    order = entitlement.delivery_order
    body = row.body
    if row.product_id != order.product.product_id:
        return (
            f"productId {row.product_id} does not match the product {order.product.product_id} "
            f"of entitlement {entitlement.entitlement_id}"
        )
    if body.get("entitlementType") != entitlement.entitlement_type:
        return (
            f"entitlementType {body.get('entitlementType')} does not match the type "
            f"{entitlement.entitlement_type} of entitlement {entitlement.entitlement_id}"
        )
    master = (body.get("school") or {}).get("organisationMasterIdentifier")
    if master and order.school.organisation_master_identifier not in (None, master):
        return (
            f"school.organisationMasterIdentifier {master} is not the school of entitlement "
            f"{entitlement.entitlement_id}"
        )
    user_master = (body.get("user") or {}).get("userMasterIdentifier")
    if (
        entitlement.entitlement_type not in ACTIVATION_CODE_TYPES
        and user_master
        and entitlement.user_master_identifier
        and user_master != entitlement.user_master_identifier
    ):
        return (
            f"user.userMasterIdentifier does not match the user of entitlement "
            f"{entitlement.entitlement_id}"
        )
    row.entitlement = entitlement
    return ""


# --- replay -----------------------------------------------------------------------------


@dataclass
class _Replayed:
    outcomes: dict[int, Decision] = field(default_factory=dict)
    entitlements: int = 0
    events: int = 0
    redecided: list[Confirmation] = field(default_factory=list)


def _event_of(row: Confirmation) -> Event:
    message = row.message
    is_activation = row.kind == ConfirmationKind.ACTIVATION
    return Event(
        effective_at=row.processed_timestamp,
        ref=row.receive_id,
        sender=row.sender_id,
        cause=EventCause.ACTIVATION if is_activation else EventCause.CONFIRMATION,
        pk=row.pk,
        new_status=row.new_entitlement_status or None,
        proposed_status=None if is_activation else message.proposed_entitlement_status,
        proposed_end_date=None if is_activation else message.proposed_end_date,
        portal=message.recipient_id if row.new_url_status else None,
        new_url_status=row.new_url_status or None,
        proposed_url_status=None if is_activation else message.proposed_url_status,
        user=row.body.get("user") if is_activation else None,
    )


def _replay(accepted: list[Confirmation], now: dt.datetime) -> _Replayed:
    """Lock the affected entitlements, fold all their accepted confirmations, write."""
    tz = hub_tz()
    ids = sorted({row.entitlement_id for row in accepted})
    locked = {
        e.pk: e
        for e in Entitlement.objects.filter(pk__in=ids)
        .select_related("delivery_order")
        .select_for_update(of=("self",), no_key=True)
        .order_by("pk")
    }
    # Lock order everywhere (here, the expiry job, mark_initialized): entitlements by id, then
    # their URL statuses by id. FOR NO KEY UPDATE on the entitlements: it still serialises
    # workers, but not the KEY SHARE that an insert of a StatusEvent pointing at the
    # entitlement takes (at commit: Django's foreign keys are deferred); FOR UPDATE would
    # deadlock with a delivery that holds a URL status row and commits its events.
    # Locking the URL statuses keeps a concurrent delivery (uninitialized → initialized)
    # from changing a row between our read and our write; the delivered requests are read
    # after the lock, so they agree with the rows we hold.
    url_rows = {
        (u.entitlement_id, u.portal_id): u
        for u in EntitlementUrlStatus.objects.filter(entitlement_id__in=ids)
        .select_for_update()
        .order_by("id")
    }
    delivered = set(
        OutboundMessage.objects.filter(
            entitlement_id__in=ids,
            kind=MessageKind.ENTITLEMENT_REQUEST,
            state=MessageState.DELIVERED,
            proposed_url_status=UrlStatus.INITIALIZED,
        ).values_list("entitlement_id", "recipient_id")
    )
    earlier = list(
        Confirmation.objects.filter(
            entitlement_id__in=ids, state__in=ACCEPTED_STATES
        ).select_related("message")
    )
    by_entitlement: dict[int, list[Confirmation]] = defaultdict(list)
    for row in [*earlier, *accepted]:
        by_entitlement[row.entitlement_id].append(row)

    # Base URL status: initialized once the request to that portal was delivered.
    base_urls: dict[int, dict[int, str]] = defaultdict(dict)
    for entitlement_pk, portal in url_rows:
        base_urls[entitlement_pk][portal] = (
            UrlStatus.INITIALIZED
            if (entitlement_pk, portal) in delivered
            else UrlStatus.UNINITIALIZED
        )

    outcomes: dict[int, Decision] = {}
    targets = []
    for pk in ids:
        entitlement = locked[pk]
        events = [_event_of(row) for row in by_entitlement[pk]]
        expiration = entitlement.delivery_order.expiration_date
        # Due by our clock, or already applied by the expiry job: either way the expiry is
        # one event of the fold, at the same moment the job uses (``expiry_rules``).
        if expiration is not None and (
            entitlement.status == EntitlementStatus.EXPIRED or is_due(expiration, now, tz)
        ):
            events.append(expiry_event(expiry_moment(expiration, tz)))
        folded = fold(base_urls[pk], events, tz)
        outcomes.update(folded.outcomes)
        targets.append(
            TargetState(
                entitlement=entitlement,
                status=folded.status,
                status_cause=folded.status_cause,
                end_date=folded.end_date,
                urls={p: (s, folded.url_causes[p]) for p, s in folded.urls.items()},
                user=folded.user,
                derive_user=True,
            )
        )
    written = write_states(targets, url_rows, now)

    redecided = []
    for row in earlier:
        decision = outcomes[row.pk]
        if (row.state, row.reason) != (decision.outcome.value, decision.reason):
            row.state, row.reason, row.decided_at = decision.outcome.value, decision.reason, now
            redecided.append(row)
    return _Replayed(outcomes, written.entitlements, written.events, redecided)
