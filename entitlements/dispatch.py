"""Delivery of the hub's outbound messages (DESIGN.md §3.4): what is sent, to whom, and what
an attempt's result does to the message.

The queue is the ``OutboundMessage`` table itself. A drain works for ONE recipient: it claims
a batch of that recipient's due messages (``SELECT ... FOR UPDATE SKIP LOCKED``, then a lease
pushes ``next_attempt_at`` past the time a batch can take, so a crashed worker's batch is
sent again after the lease), sends the batch concurrently from a thread pool, records every
attempt and updates the messages set-based, and loops while messages are due, within a time
budget (then it re-queues itself behind the other recipients' drains). Results are written
only for messages the drain still holds (its lease), so a drain that outlived its lease
cannot undo another's delivery. At most one drain per recipient runs at a time
(``entitlements.recipient_lock``), on the ``outbound`` queue: a slow or failing party only
ever occupies one worker process. The periodic sweep starts a drain for every recipient with
due messages: that drives retries and repairs lost wake-ups.

Delivery is at least once: a recipient may see the same ``entitlementReferenceId`` twice
(after a lease expired) and must treat it as the same request.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from aanspraak.outbound import Outcome, RetryPolicy, SendResult, endpoint_for_party, send
from aanspraak.timestamps import rfc3339
from entitlements.documents import order_fields
from entitlements.models import (
    DeliveryAttempt,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
)
from entitlements.recipient_lock import recipient_lock
from entitlements.statuses import EventCause, MessageKind, MessageState, UrlStatus
from entitlements.wakeups import enqueue_quietly
from entitlements.worker_settings import concurrency, drain_seconds, setting
from entitlements.worker_settings import lease_seconds as worker_lease_seconds

log = logging.getLogger(__name__)

ENTITLEMENTS_PATH = "entitlements"
CONFIRMATIONS_PATH = "deliveryorders/confirmations"
MAX_ERROR_LENGTH = 2000


def batch_size() -> int:
    return setting("HUB_OUTBOUND_BATCH_SIZE", 100)


def lease_seconds() -> float:
    return worker_lease_seconds(batch_size())


# --- Waking the workers -----------------------------------------------------------------------


def wake_after_commit(recipient_ids: Iterable[int | None]) -> None:
    """Enqueue a drain for each recipient once the current transaction commits. A broker
    that is down only delays delivery (the sweep finds the messages later): the error is
    logged, never raised, and costs one quick connection attempt."""
    ids = sorted({r for r in recipient_ids if r})
    if not ids:
        return

    def wake() -> None:
        from entitlements.tasks import drain_recipient

        enqueue_quietly(drain_recipient, [(recipient_id,) for recipient_id in ids])

    transaction.on_commit(wake, robust=True)


def due_recipients(now: dt.datetime | None = None) -> list[int]:
    """The recipients that have messages due now."""
    now = now or timezone.now()
    return list(
        OutboundMessage.objects.filter(_due(now))
        .values_list("recipient_id", flat=True)
        .distinct()
        .order_by("recipient_id")
    )


def _due(now: dt.datetime) -> Q:
    return Q(state=MessageState.PENDING) & (
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True)
    )


# --- Rendering --------------------------------------------------------------------------------


def entitlement_body(message: OutboundMessage, url_statuses: list[EntitlementUrlStatus]) -> dict:
    """The Entitlement request body: ``{"entitlementReferenceId", "entitlement"}`` with the
    seed-002 Entitlement shape. To the licensor: the proposed ``entitlementStatus`` and the
    URL statuses at every portal. To a portal: its own URL status, proposed; activation codes
    are left out (only the seller and licensor see them)."""
    entitlement = message.entitlement
    order = entitlement.delivery_order
    to_portal = message.proposed_url_status is not None
    spec = dict(entitlement.specification or {})
    if to_portal:
        spec.pop("activationCode", None)
        urls = [{"portal": message.recipient.portal_id, "urlStatus": message.proposed_url_status}]
    else:
        urls = [{"portal": u.portal.portal_id, "urlStatus": u.status} for u in url_statuses]
    body: dict = {
        "entitlementId": str(entitlement.entitlement_id),
        **order_fields(
            delivery_order_id=order.delivery_order_id,
            contract_id=order.contract_id,
            product_id=order.product.product_id,
            start_date=order.start_date,
            activation_until_date=order.activation_until_date,
            expiration_date=order.expiration_date,
        ),
    }
    end_date = message.proposed_end_date or entitlement.end_date
    if end_date:
        body["endDate"] = end_date.isoformat()
    body["entitlementType"] = entitlement.entitlement_type
    body["entitlementSpecification"] = spec
    body["entitlementStatus"] = message.proposed_entitlement_status or entitlement.status
    body["urlStatuses"] = urls
    body["dateCreated"] = rfc3339(entitlement.date_created)
    body["dateLastModified"] = rfc3339(entitlement.date_last_modified)
    return {"entitlementReferenceId": str(message.reference_id), "entitlement": body}


def render(message: OutboundMessage, url_statuses: list[EntitlementUrlStatus]) -> tuple[str, dict]:
    """The path (under the recipient's baseUrl) and JSON body of a message (sent with PUT)."""
    if message.kind == MessageKind.DELIVERYORDER_CONFIRMATION:
        return CONFIRMATIONS_PATH, message.body or {}
    return ENTITLEMENTS_PATH, entitlement_body(message, url_statuses)


# --- Claiming, sending, recording ------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """Messages one worker claimed, and its lease: the ``next_attempt_at`` it gave them. A
    message whose ``next_attempt_at`` no longer equals the lease has been taken over (the
    lease ran out and another drain claimed it) or re-sent: its result must not be written."""

    ids: list[int]
    lease: dt.datetime | None = None

    def __len__(self) -> int:
        return len(self.ids)


def claim_due(recipient_id: int, limit: int | None = None) -> Claim:
    """Claim up to ``limit`` due messages of one recipient for this worker: lock them
    (skipping rows other workers hold) and lease them by moving ``next_attempt_at`` ahead."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=lease_seconds())
    with transaction.atomic():
        ids = list(
            OutboundMessage.objects.select_for_update(skip_locked=True)
            .filter(_due(now), recipient_id=recipient_id)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[: limit or batch_size()]
        )
        if ids:
            OutboundMessage.objects.filter(id__in=ids).update(next_attempt_at=lease)
    return Claim(ids, lease)


@dataclass
class BatchReport:
    delivered: int = 0
    retry: int = 0
    failed: int = 0
    # Attempts whose message had been taken over (lease overrun) or re-sent meanwhile: stored
    # as attempts, but the message was left to its new owner.
    overrun: int = 0

    def add(self, other: BatchReport) -> None:
        self.delivered += other.delivered
        self.retry += other.retry
        self.failed += other.failed
        self.overrun += other.overrun

    @property
    def total(self) -> int:
        return self.delivered + self.retry + self.failed


def _load(ids: list[int]) -> tuple[list[OutboundMessage], dict[int, list[EntitlementUrlStatus]]]:
    messages = list(
        OutboundMessage.objects.filter(id__in=ids)
        .select_related(
            "recipient",
            "entitlement__delivery_order__product",
            "delivery_order",
        )
        .order_by("id")
    )
    entitlement_pks = [
        m.entitlement_id
        for m in messages
        if m.entitlement_id is not None and m.proposed_url_status is None
    ]
    url_statuses: dict[int, list[EntitlementUrlStatus]] = defaultdict(list)
    if entitlement_pks:
        for u in (
            EntitlementUrlStatus.objects.filter(entitlement_id__in=entitlement_pks)
            .select_related("portal")
            .order_by("portal__portal_id")
        ):
            url_statuses[u.entitlement_id].append(u)
    return messages, url_statuses


def send_batch(claim: Claim, policy: RetryPolicy | None = None) -> BatchReport:
    """Send the claimed messages concurrently and record the results."""
    policy = policy or RetryPolicy.from_settings()
    messages, url_statuses = _load(claim.ids)
    if not messages:
        return BatchReport()
    jobs = []
    endpoints = {}
    for message in messages:
        recipient = message.recipient
        if recipient.pk not in endpoints:
            endpoints[recipient.pk] = endpoint_for_party(recipient)
        path, body = render(message, url_statuses.get(message.entitlement_id, []))
        jobs.append((endpoints[recipient.pk], path, body))
    workers = max(1, min(concurrency(), len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="outbound") as pool:
        results = list(pool.map(lambda job: send(job[0], "PUT", job[1], job[2]), jobs))
    return record_results(messages, [job[2] for job in jobs], results, policy, claim.lease)


def record_results(
    messages: list[OutboundMessage],
    bodies: list[dict],
    results: list[SendResult],
    policy: RetryPolicy,
    lease: dt.datetime | None,
) -> BatchReport:
    """Store the attempts (one bulk insert), the messages' new state (one bulk update) and,
    for delivered portal requests, the URL statuses uninitialized → initialized.

    The messages are locked again first and only those this worker still holds (pending,
    ``next_attempt_at`` equal to its ``lease``) are written, from the locked rows' values: a
    worker that outlived its lease must not turn another's DELIVERED back into PENDING. Its
    attempts are stored all the same and counted in ``attempt_count`` (they did happen)."""
    now = timezone.now()
    report = BatchReport()
    attempts = []
    owned: list[OutboundMessage] = []
    overrun: list[int] = []
    initialized: list[OutboundMessage] = []
    with transaction.atomic():
        current = {
            pk: (state, next_attempt_at, attempt_count, queued_at)
            for pk, state, next_attempt_at, attempt_count, queued_at in (
                OutboundMessage.objects.select_for_update()
                .filter(id__in=[m.pk for m in messages])
                .order_by("id")
                .values_list("id", "state", "next_attempt_at", "attempt_count", "queued_at")
            )
        }
        for message, body, result in zip(messages, bodies, results, strict=True):
            if message.pk not in current:
                continue  # deleted meanwhile (its order was removed): nothing to record
            state, next_attempt_at, attempt_count, queued_at = current[message.pk]
            outcome = result.outcome
            attempts.append(
                DeliveryAttempt(
                    message_id=message.pk,
                    started_at=result.started_at,
                    duration_ms=result.duration_ms,
                    http_status=result.http_status,
                    outcome=outcome.value,
                    error=result.error[:MAX_ERROR_LENGTH],
                )
            )
            if state != MessageState.PENDING or next_attempt_at != lease:
                overrun.append(message.pk)
                report.overrun += 1
                continue
            message.attempt_count = attempt_count + 1
            message.body = body
            error = result.error[:MAX_ERROR_LENGTH]
            if outcome is Outcome.RETRY:
                when = policy.next_attempt_at(
                    queued_at, message.attempt_count, now, result.retry_after
                )
                if when is None:
                    outcome = Outcome.FAILED
                    error = (
                        f"gave up after {message.attempt_count} attempts (retry horizon "
                        f"{int(policy.horizon_seconds)}s passed); last: {error}"
                    )[:MAX_ERROR_LENGTH]
                    attempts[-1].outcome = outcome.value
                else:
                    message.next_attempt_at = when
            if outcome is Outcome.DELIVERED:
                message.state = MessageState.DELIVERED
                message.delivered_at = now
                message.next_attempt_at = None
                message.last_error = ""
                report.delivered += 1
                if message.proposed_url_status == UrlStatus.INITIALIZED:
                    initialized.append(message)
            elif outcome is Outcome.FAILED:
                message.state = MessageState.FAILED
                message.next_attempt_at = None
                message.last_error = error
                report.failed += 1
            else:
                message.last_error = error
                report.retry += 1
            owned.append(message)
        DeliveryAttempt.objects.bulk_create(attempts)
        if owned:
            OutboundMessage.objects.bulk_update(
                owned,
                ["state", "attempt_count", "next_attempt_at", "last_error", "delivered_at", "body"],
            )
        if overrun:
            log.warning(
                "%d message(s) were taken over or re-sent while this worker sent them; "
                "their attempts are stored, their state left to the new owner",
                len(overrun),
            )
            OutboundMessage.objects.filter(id__in=overrun).update(
                attempt_count=F("attempt_count") + 1
            )
        if initialized:
            mark_initialized(initialized, now)
    return report


def mark_initialized(messages: list[OutboundMessage], now: dt.datetime) -> int:
    """URL status uninitialized → initialized for the delivered portal requests (only where
    it is still uninitialized: a confirmation may have moved it on), with StatusEvents.

    The rows are locked in one statement in id order, the order the confirmation replay
    locks them in, so the two never deadlock."""
    by_pair: dict[tuple[int, int], OutboundMessage] = {
        (m.entitlement_id, m.recipient_id): m for m in messages
    }
    if not by_pair:
        return 0
    pairs = Q()
    for portal_pk in {portal for _, portal in by_pair}:
        entitlement_pks = [e for e, p in by_pair if p == portal_pk]
        pairs |= Q(portal_id=portal_pk, entitlement_id__in=entitlement_pks)
    rows = list(
        EntitlementUrlStatus.objects.select_for_update()
        .filter(pairs, status=UrlStatus.UNINITIALIZED)
        .order_by("id")
        .values_list("id", "entitlement_id", "portal_id")
    )
    if not rows:
        return 0
    EntitlementUrlStatus.objects.filter(id__in=[r[0] for r in rows]).update(
        status=UrlStatus.INITIALIZED, status_changed_at=now, date_last_modified=now
    )
    events = []
    for _, entitlement_pk, portal_pk in rows:
        message = by_pair[(entitlement_pk, portal_pk)]
        events.append(
            StatusEvent(
                entitlement_id=entitlement_pk,
                portal_id=portal_pk,
                from_status=UrlStatus.UNINITIALIZED,
                to_status=UrlStatus.INITIALIZED,
                cause=EventCause.DELIVERY,
                cause_pk=message.pk,
                cause_ref=str(message.reference_id),
                effective_at=now,
            )
        )
    StatusEvent.objects.bulk_create(events)
    return len(rows)


@dataclass
class DrainReport(BatchReport):
    batches: int = 0
    more: bool = False
    # Another drain of the same recipient was running: this one sent nothing.
    busy: bool = False


def drain(recipient_id: int, time_budget: float | None = None) -> DrainReport:
    """Send one recipient's due messages batch by batch until none are due or the time
    budget is spent (``more`` then says the caller should drain again later).

    At most one drain per recipient runs at a time (``recipient_lock``): when another holds
    the lock this returns at once with ``busy``, so a slow party's drains never pile up on
    the workers."""
    budget = time_budget if time_budget is not None else drain_seconds()
    report = DrainReport()
    with recipient_lock(recipient_id) as held:
        if not held:
            report.busy = True
            return report
        _drain_locked(recipient_id, budget, report)
    if not report.more:
        # A wake-up that came while we held the lock was dropped as busy; if its messages
        # are due now, have the caller drain again rather than wait for the sweep.
        report.more = OutboundMessage.objects.filter(
            _due(timezone.now()), recipient_id=recipient_id
        ).exists()
    return report


def _drain_locked(recipient_id: int, budget: float, report: DrainReport) -> None:
    deadline = time.monotonic() + budget
    policy = RetryPolicy.from_settings()
    while True:
        claim = claim_due(recipient_id)
        if not claim.ids:
            return
        report.add(send_batch(claim, policy))
        report.batches += 1
        if time.monotonic() >= deadline:
            report.more = True
            return
