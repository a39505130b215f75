"""The worker's side: claim pending confirmations in batches, check them, replay the affected
entitlements and write the result, set-based and with a constant number of queries per batch.

Per batch, in one transaction:
1. claim up to ``HUB_APPLY_BATCH_SIZE`` pending rows, oldest first (``FOR UPDATE SKIP
   LOCKED``: workers never claim the same row; served by the partial index on pending rows);
2. check each against the Entitlement request it names (one query) or, for activations, the
   entitlement (one query); failures are ``rejected`` with a reason the sender can act on;
3. lock the affected entitlements, then their URL statuses (each ordered by id, the lock
   order of the expiry job too: no deadlocks), then load their delivered requests and all
   earlier accepted confirmations (four queries). Entitlements another worker holds are
   skipped and their confirmations left pending for the next batch, so two workers never
   queue behind each other (unless every entitlement of the batch is held: then it waits);
4. fold every affected entitlement from its base state (``confirmations.replay``);
5. write entitlements, URL statuses, status events and the confirmations' outcomes (four
   statements, ``entitlements.services.status``).

Rows are read as plain values (``values_list``), never as model instances: per-row ORM
objects and ``bulk_update``'s CASE expressions were most of the time (docs/performance.md,
"P3: the apply worker").
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Case, F, JSONField, QuerySet, When
from django.utils import timezone

from confirmations.models import Confirmation, ConfirmationKind, ConfirmationState
from confirmations.replay import Event, expiry_event, fold
from entitlements.models import Entitlement, EntitlementUrlStatus, OutboundMessage
from entitlements.rules.expiry import expiry_moment, hub_tz, is_due
from entitlements.rules.transitions import Decision
from entitlements.services.status import (
    LockedEntitlement,
    LockedUrlStatus,
    TargetState,
    update_rows,
    write_states,
)
from entitlements.statuses import (
    ACTIVATION_CODE_TYPES,
    EntitlementStatus,
    EventCause,
    MessageKind,
    MessageState,
    UrlStatus,
)

log = logging.getLogger(__name__)

ACCEPTED_STATES = [ConfirmationState.APPLIED, ConfirmationState.DUPLICATE, ConfirmationState.STALE]
OUTCOME_FIELDS = ["state", "reason", "entitlement", "message"]


@dataclass
class BatchResult:
    claimed: int = 0  # decided in this batch (claimed rows left pending are not counted)
    rejected: int = 0
    entitlements: int = 0
    events: int = 0
    deferred: int = 0  # claimed, but their entitlement was held by another worker
    full: bool = False  # the claim took as many rows as it asked for: more may be waiting


# Reason given to a confirmation whose application raised (a bug, or data the code does not
# expect): it is set aside so that it cannot block every batch behind it.
QUARANTINE_REASON = (
    "the hub could not apply this confirmation because of an internal error; it has been "
    "logged for the hub's support desk (confirmation {pk})"
)


def apply_all_pending(
    batch_size: int | None = None,
    on_more: Callable[[], object] | None = None,
    *,
    on_batch: Callable[[], object] | None = None,
    before_last_claim: Callable[[], object] | None = None,
    gather_seconds: float = 0.0,
) -> int:
    """Apply batches until no unclaimed pending confirmation is left; the number decided.

    ``on_more`` is called once, after the first full batch: the backlog is larger than one
    batch and another worker may share it (the task wakes one). ``on_batch`` is called after
    every batch that claimed rows; ``before_last_claim`` when a claim found none, before one
    more claim that decides whether to stop (the task's wake-up protocol, services/wake.py).
    After a batch that was not full the loop waits ``gather_seconds``: under a steady stream
    the next batch holds more confirmations, and a batch's cost is mostly fixed (its dozen
    queries), so the worker keeps up with less CPU, at a latency of at most that wait.

    A batch that raises is retried one confirmation at a time, so one that cannot be applied
    is set aside (rejected, with a reason naming it) instead of blocking all others. A lost
    database connection is not the confirmations' fault: it propagates, nothing is set aside,
    and the task is retried.
    """
    total = 0
    last_claim = False
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
            if before_last_claim is None or last_claim:
                return total
            before_last_claim()
            last_claim = True
            continue
        last_claim = False
        if on_batch is not None:
            on_batch()
        if on_more is not None and result.full:
            on_more()
            on_more = None
        if gather_seconds and not result.full:
            time.sleep(gather_seconds)


def _apply_one_at_a_time(batch_size: int | None) -> BatchResult:
    """Apply the oldest pending confirmations each in its own transaction; set aside those
    that raise."""
    limit = batch_size or settings.HUB_APPLY_BATCH_SIZE
    ids = list(
        Confirmation.objects.filter(state=ConfirmationState.PENDING)
        .order_by("received_at")
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


@dataclass(slots=True)
class _Row:
    """A claimed or an earlier accepted confirmation: the columns the checks and the fold
    read, and what the check resolved (entitlement, request and its proposal)."""

    pk: int
    sender: int
    sender_name: str
    kind: str
    receive_id: str
    reference_id: str
    entitlement_ref: str
    product_id: str
    processed_timestamp: dt.datetime
    new_status: str | None
    url_portal: str | None
    new_url_status: str | None
    body: dict | None  # activations only
    entitlement: int | None = None
    message: int | None = None
    proposed_status: str | None = None
    proposed_end_date: dt.date | None = None
    proposed_url_status: str | None = None
    recipient: int | None = None
    state: str = ConfirmationState.PENDING
    reason: str = ""


def _activation_body() -> Case:
    # The body is read for activations only (their checks and user binding need it).
    return Case(
        When(kind=ConfirmationKind.ACTIVATION, then=F("body")),
        default=None,
        output_field=JSONField(),
    )


CLAIM_FIELDS = (
    "id",
    "sender_id",
    "sender__name",
    "kind",
    "receive_id",
    "reference_id",
    "entitlement_ref",
    "product_id",
    "processed_timestamp",
    "new_entitlement_status",
    "url_portal",
    "new_url_status",
    "activation_body",
)


def _claim(pending: QuerySet, limit: int) -> list[_Row]:
    # Oldest first by received_at: the partial index on pending rows (received_at) WHERE
    # state = 'pending' serves it and is read only as far as the rows taken (and skipped).
    rows = (
        pending.annotate(activation_body=_activation_body())
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("received_at")
        .values_list(*CLAIM_FIELDS)[:limit]
    )
    return [_Row(*row) for row in rows]


def apply_pending_batch(batch_size: int | None = None, only: int | None = None) -> BatchResult:
    """Claim, check and apply one batch of pending confirmations in one transaction (only the
    confirmation with primary key ``only``, when given)."""
    limit = batch_size or settings.HUB_APPLY_BATCH_SIZE
    pending = Confirmation.objects.filter(state=ConfirmationState.PENDING)
    if only is not None:
        pending = pending.filter(pk=only)
    with transaction.atomic():
        batch = _claim(pending, limit)
        if not batch:
            return BatchResult()
        log.info("claimed %d confirmations", len(batch))
        if settings.HUB_APPLY_BATCH_DELAY:
            time.sleep(settings.HUB_APPLY_BATCH_DELAY)  # test only: a window to kill us in
        now = timezone.now()
        accepted, reasons = _check(batch)
        result = _replay(accepted, now) if accepted else _Replayed()

        decided: list[tuple] = []
        for row in batch:
            if row.pk in reasons:
                decided.append((row.pk, ConfirmationState.REJECTED, reasons[row.pk], None, None))
            elif row.pk in result.outcomes:
                decision = result.outcomes[row.pk]
                decided.append(
                    (
                        row.pk,
                        decision.outcome.value,
                        decision.reason,
                        row.entitlement,
                        row.message,
                    )
                )
            # else: deferred (its entitlement is held by another worker); stays pending
        update_rows(Confirmation, OUTCOME_FIELDS, decided + result.redecided, {"decided_at": now})
    deferred = len(batch) - len(decided)
    log.info(
        "applied batch: %d confirmations, %d rejected, %d deferred, %d entitlements changed, "
        "%d events",
        len(decided),
        len(reasons),
        deferred,
        result.entitlements,
        result.events,
    )
    return BatchResult(
        len(decided),
        len(reasons),
        result.entitlements,
        result.events,
        deferred,
        len(batch) == limit,
    )


# --- checks -----------------------------------------------------------------------------


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


def _check(batch: list[_Row]) -> tuple[list[_Row], dict[int, str]]:
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


def _check_confirmation(row: _Row, message: _Request | None) -> str:
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


def _check_activation(row: _Row, entitlement: _Activated | None) -> str:
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


# --- replay -----------------------------------------------------------------------------


@dataclass
class _Replayed:
    outcomes: dict[int, Decision] = field(default_factory=dict)
    entitlements: int = 0
    events: int = 0
    # (pk, state, reason, entitlement, message) of earlier rows the replay changed
    redecided: list[tuple] = field(default_factory=list)


def _event_of(row: _Row) -> Event:
    is_activation = row.kind == ConfirmationKind.ACTIVATION
    return Event(
        effective_at=row.processed_timestamp,
        ref=row.receive_id,
        sender=row.sender,
        cause=EventCause.ACTIVATION if is_activation else EventCause.CONFIRMATION,
        pk=row.pk,
        new_status=row.new_status or None,
        proposed_status=row.proposed_status,
        proposed_end_date=row.proposed_end_date,
        portal=row.recipient if row.new_url_status else None,
        new_url_status=row.new_url_status or None,
        proposed_url_status=row.proposed_url_status,
        user=(row.body or {}).get("user") if is_activation else None,
    )


LOCK_FIELDS = (
    "pk",
    "entitlement_type",
    "status",
    "end_date",
    "status_changed_at",
    "user_master_identifier",
    "user_ids",
    "code_specification",
    "delivery_order__expiration_date",
)

EARLIER_FIELDS = (
    "id",
    "sender_id",
    "kind",
    "receive_id",
    "processed_timestamp",
    "new_entitlement_status",
    "new_url_status",
    "activation_body",
    "entitlement_id",
    "message_id",
    "message__proposed_entitlement_status",
    "message__proposed_end_date",
    "message__proposed_url_status",
    "message__recipient_id",
    "state",
    "reason",
)


def _lock_entitlements(ids: list[int], skip_locked: bool) -> dict[int, tuple]:
    # FOR NO KEY UPDATE: it still serialises workers, but not the KEY SHARE that an insert of
    # a StatusEvent pointing at the entitlement takes (at commit: Django's foreign keys are
    # deferred); FOR UPDATE would deadlock with a delivery that holds a URL status row and
    # commits its events.
    rows = (
        Entitlement.objects.filter(pk__any=ids)
        .annotate(
            # The specification is only rewritten when an activation code's binding changes.
            code_specification=Case(
                When(entitlement_type__in=ACTIVATION_CODE_TYPES, then=F("specification")),
                default=None,
                output_field=JSONField(),
            )
        )
        .select_for_update(of=("self",), no_key=True, skip_locked=skip_locked)
        .order_by("pk")
        .values_list(*LOCK_FIELDS)
    )
    return {row[0]: row for row in rows}


def _replay(accepted: list[_Row], now: dt.datetime) -> _Replayed:
    """Lock the affected entitlements, fold all their accepted confirmations, write."""
    tz = hub_tz()
    wanted = sorted({row.entitlement for row in accepted})
    # Lock order everywhere (here, the expiry job, mark_initialized): entitlements by id, then
    # their URL statuses by id. Entitlements another worker holds are skipped: their
    # confirmations stay pending (uncounted) and a later batch takes them, instead of this
    # worker waiting for that one's commit. Only when it holds none of them it waits.
    locked = _lock_entitlements(wanted, skip_locked=True)
    if not locked:
        locked = _lock_entitlements(wanted, skip_locked=False)
    ids = sorted(locked)
    accepted = [row for row in accepted if row.entitlement in locked]
    # Locking the URL statuses keeps a concurrent delivery (uninitialized → initialized)
    # from changing a row between our read and our write; the delivered requests are read
    # after the lock, so they agree with the rows we hold.
    url_rows = {
        (u.entitlement_id, u.portal_id): u
        for u in map(
            lambda values: LockedUrlStatus(*values),
            EntitlementUrlStatus.objects.filter(entitlement_id__any=ids)
            .select_for_update()
            .order_by("id")
            .values_list("id", "entitlement_id", "portal_id", "status", "status_changed_at"),
        )
    }
    delivered = set(
        OutboundMessage.objects.filter(
            entitlement_id__any=ids,
            kind=MessageKind.ENTITLEMENT_REQUEST,
            state=MessageState.DELIVERED,
            proposed_url_status=UrlStatus.INITIALIZED,
        ).values_list("entitlement_id", "recipient_id")
    )
    earlier = [
        _Row(
            pk,
            sender,
            "",
            kind,
            receive_id,
            "",
            "",
            "",
            processed,
            new_status,
            None,
            new_url_status,
            body,
            entitlement,
            message,
            proposed_status,
            proposed_end_date,
            proposed_url_status,
            recipient,
            state,
            reason,
        )
        for (
            pk,
            sender,
            kind,
            receive_id,
            processed,
            new_status,
            new_url_status,
            body,
            entitlement,
            message,
            proposed_status,
            proposed_end_date,
            proposed_url_status,
            recipient,
            state,
            reason,
        ) in Confirmation.objects.filter(entitlement_id__any=ids, state__in=ACCEPTED_STATES)
        .annotate(activation_body=_activation_body())
        .values_list(*EARLIER_FIELDS)
    ]
    by_entitlement: dict[int, list[Event]] = defaultdict(list)
    for row in [*earlier, *accepted]:
        by_entitlement[row.entitlement].append(_event_of(row))

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
        (_, etype, status, end_date, changed_at, master, user_ids, spec, expiration) = locked[pk]
        events = by_entitlement[pk]
        # Due by our clock, or already applied by the expiry job: either way the expiry is
        # one event of the fold, at the same moment the job uses (``entitlements.rules.expiry``).
        if expiration is not None and (
            status == EntitlementStatus.EXPIRED or is_due(expiration, now, tz)
        ):
            events.append(expiry_event(expiry_moment(expiration, tz)))
        folded = fold(base_urls[pk], events, tz)
        outcomes.update(folded.outcomes)
        targets.append(
            TargetState(
                entitlement=LockedEntitlement(
                    pk, etype, status, end_date, changed_at, master, user_ids, spec
                ),
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
            redecided.append(
                (row.pk, decision.outcome.value, decision.reason, row.entitlement, row.message)
            )
    return _Replayed(outcomes, written.entitlements, written.events, redecided)
