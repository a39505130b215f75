"""Delivery of the hub's outbound messages (docs/delivery.md, "Outbound messages"): what
is sent, to whom, and what an attempt's result does to the message.

The queue is the ``OutboundMessage`` table itself. A drain works for ONE recipient: it claims
a batch of that recipient's due messages (``SELECT ... FOR UPDATE SKIP LOCKED``, then a lease
pushes ``next_attempt_at`` past the time a batch can take, so a crashed worker's batch is
sent again after the lease), sends the batch concurrently from a thread pool, records every
attempt and updates the messages set-based, and loops while messages are due, within a time
budget (then it re-queues itself behind the other recipients' drains). Results are written
only for messages the drain still holds (its lease), so a drain that outlived its lease
cannot undo another's delivery. At most one drain per recipient runs at a time
(``aanspraak.locks``), on the ``outbound`` queue: a slow or failing party only
ever occupies one worker process. The periodic sweep starts a drain for every recipient with
due messages: that drives retries and repairs lost wake-ups.

Delivery is at least once: a recipient may see the same ``entitlementReferenceId`` twice
(after a lease expired) and must treat it as the same request.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import orjson
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from aanspraak.enqueue import enqueue_quietly
from aanspraak.locks import recipient_lock
from aanspraak.models import Party
from aanspraak.outbound import Endpoint, Outcome, RetryPolicy, SendResult, endpoint_for_party, send
from aanspraak.outbound.client import check_token
from aanspraak.timestamps import rfc3339
from entitlements.models import (
    DeliveryAttempt,
    EntitlementUrlStatus,
    OutboundMessage,
    StatusEvent,
)
from entitlements.rules.documents import order_fields
from entitlements.statuses import EventCause, MessageKind, MessageState, UrlStatus
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
    """The recipients that have messages due now.

    Two existence probes per party (never tried; retry due) on the claim's partial index,
    instead of reading every pending message: the parties are few, a backlog is not."""
    now = now or timezone.now()
    pending = OutboundMessage.objects.filter(recipient=OuterRef("pk"), state=MessageState.PENDING)
    return list(
        Party.objects.filter(
            Exists(pending.filter(next_attempt_at__isnull=True))
            | Exists(pending.filter(next_attempt_at__lte=now))
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _due(now: dt.datetime) -> Q:
    return Q(state=MessageState.PENDING) & (
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True)
    )


# --- Rendering --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """What a batch keeps of a claimed message while it is sent and recorded: plain values
    from one query, no model instances (20,000 requests would build 100,000 of them)."""

    pk: int
    reference_id: uuid.UUID
    kind: str
    recipient_id: int
    entitlement_id: int | None
    proposed_url_status: str | None


# The columns a batch reads: the message, its entitlement and that entitlement's order.
_COLUMNS = (
    "id",
    "reference_id",
    "kind",
    "recipient_id",
    "entitlement_id",
    "proposed_url_status",
    "proposed_entitlement_status",
    "proposed_end_date",
    "body",
    "entitlement__entitlement_id",
    "entitlement__entitlement_type",
    "entitlement__status",
    "entitlement__end_date",
    "entitlement__specification",
    "entitlement__date_created",
    "entitlement__date_last_modified",
    "entitlement__delivery_order_id",
    "entitlement__delivery_order__delivery_order_id",
    "entitlement__delivery_order__contract_id",
    "entitlement__delivery_order__product__product_id",
    "entitlement__delivery_order__start_date",
    "entitlement__delivery_order__activation_until_date",
    "entitlement__delivery_order__expiration_date",
)


def entitlement_body(
    row: dict, url_statuses: list[tuple[str, str]], portal_id: str | None, order: dict
) -> dict:
    """The Entitlement request body: ``{"entitlementReferenceId", "entitlement"}`` with the
    seed-002 Entitlement shape. To the licensor: the proposed ``entitlementStatus`` and the
    URL statuses at every portal (``url_statuses``: (portalId, status) in portalId order). To
    a portal (``portal_id``): its own URL status, proposed; activation codes are left out
    (only the seller and licensor see them). ``order``: the fields from the delivery order
    (``order_fields``), shared by the batch's messages of one order."""
    proposed_url_status = row["proposed_url_status"]
    spec = dict(row["entitlement__specification"] or {})
    if proposed_url_status is not None:
        spec.pop("activationCode", None)
        urls = [{"portal": portal_id, "urlStatus": proposed_url_status}]
    else:
        urls = [{"portal": portal, "urlStatus": status} for portal, status in url_statuses]
    body: dict = {"entitlementId": str(row["entitlement__entitlement_id"]), **order}
    end_date = row["proposed_end_date"] or row["entitlement__end_date"]
    if end_date:
        body["endDate"] = end_date.isoformat()
    body["entitlementType"] = row["entitlement__entitlement_type"]
    body["entitlementSpecification"] = spec
    body["entitlementStatus"] = row["proposed_entitlement_status"] or row["entitlement__status"]
    body["urlStatuses"] = urls
    body["dateCreated"] = rfc3339(row["entitlement__date_created"])
    body["dateLastModified"] = rfc3339(row["entitlement__date_last_modified"])
    return {"entitlementReferenceId": str(row["reference_id"]), "entitlement": body}


def _order_part(row: dict) -> dict:
    return order_fields(
        delivery_order_id=row["entitlement__delivery_order__delivery_order_id"],
        contract_id=row["entitlement__delivery_order__contract_id"],
        product_id=row["entitlement__delivery_order__product__product_id"],
        start_date=row["entitlement__delivery_order__start_date"],
        activation_until_date=row["entitlement__delivery_order__activation_until_date"],
        expiration_date=row["entitlement__delivery_order__expiration_date"],
    )


# The JSON columns of _COLUMNS, parsed by _rows itself on PostgreSQL.
_JSON_COLUMNS = [
    i for i, name in enumerate(_COLUMNS) if name in {"body", "entitlement__specification"}
]


def _rows(ids: list[int]) -> list[dict]:
    """The batch's messages with their entitlement and order, as dicts keyed by _COLUMNS.

    On PostgreSQL the queryset's SQL is run on a plain cursor: Django's per-row converters
    (``values()`` iteration was 14 % of a drain's GIL time) are skipped and the JSON columns,
    which Django's connection hands over as text, are parsed with orjson."""
    queryset = OutboundMessage.objects.filter(id__in=ids).order_by("id").values_list(*_COLUMNS)
    if connection.vendor != "postgresql":
        return [dict(zip(_COLUMNS, row, strict=True)) for row in queryset]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    rows = []
    for values in fetched:
        row = list(values)
        for i in _JSON_COLUMNS:
            if isinstance(row[i], str | bytes):
                row[i] = orjson.loads(row[i])
        rows.append(dict(zip(_COLUMNS, row, strict=True)))
    return rows


@dataclass
class Prepared:
    """A claimed batch, loaded and rendered: per message the endpoint, path and body (JSON
    bytes, rendered when sent and stored as sent), or an answer known without sending (the
    recipient's token could not be had)."""

    claim: Claim
    messages: list[Message]
    jobs: list[tuple[Endpoint, str, bytes]]
    known: dict[int, SendResult]


def prepare(claim: Claim) -> Prepared:
    """Load the claimed messages in three queries (messages with entitlement and order, the
    licensor requests' URL statuses, the recipients) and render their bodies."""
    rows = _rows(claim.ids)
    licensor_pks = [
        r["entitlement_id"]
        for r in rows
        if r["entitlement_id"] is not None and r["proposed_url_status"] is None
    ]
    url_statuses: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if licensor_pks:
        for entitlement_pk, portal_id, status in (
            EntitlementUrlStatus.objects.filter(entitlement_id__in=licensor_pks)
            .order_by("portal__portal_id")
            .values_list("entitlement_id", "portal__portal_id", "status")
        ):
            url_statuses[entitlement_pk].append((portal_id, status))
    parties = {p.pk: p for p in Party.objects.filter(pk__in={r["recipient_id"] for r in rows})}
    endpoints = {pk: endpoint_for_party(party) for pk, party in parties.items()}
    # One token check per endpoint and batch instead of one per request; when no token can
    # be had, every message of the batch gets that failed attempt without being sent.
    known_by_recipient = {pk: check_token(endpoint) for pk, endpoint in endpoints.items()}
    orders: dict[int, dict] = {}
    messages: list[Message] = []
    jobs: list[tuple[Endpoint, str, bytes]] = []
    known: dict[int, SendResult] = {}
    for row in rows:
        recipient_pk = row["recipient_id"]
        messages.append(
            Message(
                row["id"],
                row["reference_id"],
                row["kind"],
                recipient_pk,
                row["entitlement_id"],
                row["proposed_url_status"],
            )
        )
        if row["kind"] == MessageKind.DELIVERYORDER_CONFIRMATION:
            path, body = CONFIRMATIONS_PATH, row["body"] or {}
        else:
            order_pk = row["entitlement__delivery_order_id"]
            if order_pk not in orders:
                orders[order_pk] = _order_part(row)
            path = ENTITLEMENTS_PATH
            body = entitlement_body(
                row,
                url_statuses.get(row["entitlement_id"], []),
                parties[recipient_pk].portal_id,
                orders[order_pk],
            )
        jobs.append((endpoints[recipient_pk], path, orjson.dumps(body)))
        if known_by_recipient[recipient_pk] is not None:
            known[len(jobs) - 1] = known_by_recipient[recipient_pk]
    return Prepared(claim, messages, jobs, known)


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
    (skipping rows other workers hold) and lease them by moving ``next_attempt_at`` ahead.

    Due retries (``next_attempt_at <= now``) come first, then messages never tried
    (``next_attempt_at`` null), each in (next_attempt_at, id) order: two range scans of the
    pending index on (recipient, next_attempt_at, id), which stop after ``limit`` rows
    however many are due. (One ``<= now OR IS NULL`` scan would walk every leased and
    backed-off row before the never-tried ones, which sort last.)"""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=lease_seconds())
    limit = limit or batch_size()
    pending = (
        OutboundMessage.objects.select_for_update(skip_locked=True)
        .filter(state=MessageState.PENDING, recipient_id=recipient_id)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)
    )
    with transaction.atomic():
        ids = list(pending.filter(next_attempt_at__lte=now)[:limit])
        if len(ids) < limit:
            ids += pending.filter(next_attempt_at__isnull=True)[: limit - len(ids)]
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


@dataclass
class InFlight:
    """A batch whose requests are queued on or running in a drain's thread pool."""

    prepared: Prepared
    futures: list[Future | None]


def start(prepared: Prepared, pool: ThreadPoolExecutor) -> InFlight:
    """Queue the batch's requests on ``pool``. A drain queues the next batch before the
    previous one is recorded, so the pool's window stays full across batches."""
    futures: list[Future | None] = [
        None
        if i in prepared.known
        else pool.submit(send, endpoint, "PUT", path, body, token_checked=True)
        for i, (endpoint, path, body) in enumerate(prepared.jobs)
    ]
    return InFlight(prepared, futures)


def finish(batch: InFlight, policy: RetryPolicy) -> BatchReport:
    """Wait for the batch's answers and record them."""
    prepared = batch.prepared
    if not prepared.messages:
        return BatchReport()
    results = [
        prepared.known[i] if future is None else future.result()
        for i, future in enumerate(batch.futures)
    ]
    return record_results(
        prepared.messages,
        [job[2] for job in prepared.jobs],
        results,
        policy,
        prepared.claim.lease,
    )


def send_batch(claim: Claim, policy: RetryPolicy | None = None) -> BatchReport:
    """Send the claimed messages concurrently and record the results."""
    policy = policy or RetryPolicy.from_settings()
    prepared = prepare(claim)
    workers = max(1, min(concurrency(), len(prepared.jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="outbound") as pool:
        return finish(start(prepared, pool), policy)


def record_results(
    messages: list[Message],
    bodies: list[bytes],
    results: list[SendResult],
    policy: RetryPolicy,
    lease: dt.datetime | None,
) -> BatchReport:
    """Store the attempts (one insert), the messages' new state (one update) and, for
    delivered portal requests, the URL statuses uninitialized → initialized.

    The messages are locked again first and only those this worker still holds (pending,
    ``next_attempt_at`` equal to its ``lease``) are written, from the locked rows' values: a
    worker that outlived its lease must not turn another's DELIVERED back into PENDING. Its
    attempts are stored all the same and counted in ``attempt_count`` (they did happen)."""
    now = timezone.now()
    report = BatchReport()
    attempts: list[tuple] = []
    owned: list[tuple] = []
    overrun: list[int] = []
    initialized: list[Message] = []
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
            error = result.error[:MAX_ERROR_LENGTH]
            if state != MessageState.PENDING or next_attempt_at != lease:
                attempts.append(_attempt(message, result, outcome, error))
                overrun.append(message.pk)
                report.overrun += 1
                continue
            attempt_count += 1
            when = None
            if outcome is Outcome.RETRY:
                when = policy.next_attempt_at(queued_at, attempt_count, now, result.retry_after)
                if when is None:
                    outcome = Outcome.FAILED
                    error = (
                        f"gave up after {attempt_count} attempts (retry horizon "
                        f"{int(policy.horizon_seconds)}s passed); last: {error}"
                    )[:MAX_ERROR_LENGTH]
            attempts.append(_attempt(message, result, outcome, error))
            if outcome is Outcome.DELIVERED:
                owned.append((message.pk, MessageState.DELIVERED, attempt_count, None, "", now))
                report.delivered += 1
                if message.proposed_url_status == UrlStatus.INITIALIZED:
                    initialized.append(message)
            elif outcome is Outcome.FAILED:
                owned.append((message.pk, MessageState.FAILED, attempt_count, None, error, None))
                report.failed += 1
            else:
                owned.append((message.pk, MessageState.PENDING, attempt_count, when, error, None))
                report.retry += 1
            owned[-1] += (body,)
        _insert_attempts(attempts)
        _update_messages(owned)
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


def _attempt(message: Message, result: SendResult, outcome: Outcome, error: str) -> tuple:
    return (
        message.pk,
        result.started_at,
        result.duration_ms,
        result.http_status,
        outcome.value,
        error,
    )


def _insert_attempts(rows: list[tuple]) -> None:
    """One INSERT of the attempts: on PostgreSQL from one JSON parameter (no model instances,
    and one string to quote instead of an array element by element), ``bulk_create``
    elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                message_id=pk,
                started_at=started_at,
                duration_ms=duration_ms,
                http_status=http_status,
                outcome=outcome,
                error=error,
            )
            for pk, started_at, duration_ms, http_status, outcome, error in rows
        )
        return
    payload = orjson.dumps(
        [{"m": m, "s": s, "d": d, "h": h, "o": o, "e": e} for m, s, d, h, o, e in rows]
    )
    # The table name comes from the model, never from input.
    table = connection.ops.quote_name(DeliveryAttempt._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (message_id, started_at, duration_ms, http_status, outcome, "  # noqa: S608
            "error) SELECT m, s, d, h, o, e FROM json_to_recordset(%s::json) "
            "AS v(m bigint, s timestamptz, d int, h int, o text, e text)",
            [payload.decode()],
        )


def _update_messages(rows: list[tuple]) -> None:
    """One UPDATE of the owned messages (id, state, attempt_count, next_attempt_at,
    last_error, delivered_at, body as sent): on PostgreSQL joined to one JSON parameter,
    ``bulk_update`` (a CASE per column and row) elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        OutboundMessage.objects.bulk_update(
            [
                OutboundMessage(
                    pk=pk,
                    state=state,
                    attempt_count=attempt_count,
                    next_attempt_at=next_attempt_at,
                    last_error=last_error,
                    delivered_at=delivered_at,
                    body=orjson.loads(body),
                )
                for pk, state, attempt_count, next_attempt_at, last_error, delivered_at, body in (
                    rows
                )
            ],
            ["state", "attempt_count", "next_attempt_at", "last_error", "delivered_at", "body"],
        )
        return
    # The bodies go in as they were sent, without being parsed and encoded again.
    payload = orjson.dumps(
        [
            {"i": i, "s": s, "c": c, "n": n, "e": e, "d": d, "b": orjson.Fragment(b)}
            for i, s, c, n, e, d, b in rows
        ]
    )
    table = connection.ops.quote_name(OutboundMessage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS m SET state = v.s, attempt_count = v.c, next_attempt_at = v.n, "  # noqa: S608
            "last_error = v.e, delivered_at = v.d, body = v.b "
            "FROM json_to_recordset(%s::json) "
            "AS v(i bigint, s text, c int, n timestamptz, e text, d timestamptz, b jsonb) "
            "WHERE m.id = v.i",
            [payload.decode()],
        )


def mark_initialized(messages: list[Message], now: dt.datetime) -> int:
    """URL status uninitialized → initialized for the delivered portal requests (only where
    it is still uninitialized: a confirmation may have moved it on), with StatusEvents.

    The rows are locked in one statement in id order, the order the confirmation replay
    locks them in, so the two never deadlock."""
    by_pair: dict[tuple[int, int], Message] = {
        (m.entitlement_id, m.recipient_id): m for m in messages
    }
    if not by_pair:
        return 0
    if connection.vendor == "postgresql":
        return _mark_initialized_pg(by_pair, now)
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


def _mark_initialized_pg(by_pair: dict[tuple[int, int], Message], now: dt.datetime) -> int:
    """:func:`mark_initialized` in one statement: lock (in id order), update and insert the
    StatusEvents without a round trip or a model instance per row."""
    payload = orjson.dumps(
        [
            {"e": e, "p": p, "m": m.pk, "r": str(m.reference_id)}
            for (e, p), m in sorted(by_pair.items())
        ]
    )
    url_status = connection.ops.quote_name(EntitlementUrlStatus._meta.db_table)
    event = connection.ops.quote_name(StatusEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH v AS (SELECT * FROM json_to_recordset(%s::json) "  # noqa: S608
            "AS v(e bigint, p bigint, m bigint, r text)), "
            f"locked AS (SELECT u.id, v.e, v.p, v.m, v.r FROM {url_status} u "
            "JOIN v ON u.entitlement_id = v.e AND u.portal_id = v.p "
            "WHERE u.status = %s ORDER BY u.id FOR UPDATE OF u), "
            f"changed AS (UPDATE {url_status} u SET status = %s, status_changed_at = %s, "
            "date_last_modified = %s FROM locked WHERE u.id = locked.id RETURNING u.id) "
            f"INSERT INTO {event} (entitlement_id, portal_id, from_status, to_status, cause, "
            "cause_pk, cause_ref, effective_at, recorded_at) "
            "SELECT locked.e, locked.p, %s, %s, %s, locked.m, locked.r, %s, %s "
            "FROM locked JOIN changed ON changed.id = locked.id",
            [
                payload.decode(),
                UrlStatus.UNINITIALIZED,
                UrlStatus.INITIALIZED,
                now,
                now,
                UrlStatus.UNINITIALIZED,
                UrlStatus.INITIALIZED,
                EventCause.DELIVERY,
                now,
                now,
            ],
        )
        return cursor.rowcount


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
    # One pool for the whole drain, and the next batch is claimed and queued on it before
    # the one in flight is recorded: the requests never wait for the database, and the
    # database work of one batch overlaps the sending of the next. At most two batches are
    # claimed at once, which the lease allows for (worker_settings.lease_seconds).
    with ThreadPoolExecutor(max_workers=concurrency(), thread_name_prefix="outbound") as pool:
        in_flight: InFlight | None = None
        out_of_time = False
        while True:
            claim = Claim([]) if out_of_time else claim_due(recipient_id)
            queued = start(prepare(claim), pool) if claim.ids else None
            if in_flight is not None:
                report.add(finish(in_flight, policy))
                report.batches += 1
            if queued is None:
                report.more = out_of_time
                return
            in_flight = queued
            out_of_time = time.monotonic() >= deadline
