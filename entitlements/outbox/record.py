"""Recording a batch's attempts and results set-based, and a portal's delivery turning its
URL status ``initialized``."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

import orjson
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from aanspraak.log_format import log_each
from aanspraak.metrics import count_outbound_failures
from aanspraak.models import Party
from aanspraak.outbound import AttemptOutcome, RetryPolicy, SendResult
from aanspraak.workers import lock_held
from entitlements.models import DeliveryAttempt, EntitlementUrlStatus, OutboundMessage
from entitlements.rules.transitions import Cause, Subject, sources
from entitlements.status import UrlChange, write_changes
from entitlements.statuses import EventCause, MessageState, UrlStatus

from .render import Message

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000


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


def record_results(
    messages: list[Message],
    bodies: list[bytes],
    results: list[SendResult],
    policy: RetryPolicy,
    lease: dt.datetime | None,
) -> BatchReport:
    """Store the attempts (one insert), the messages' new state (one update) and, for
    delivered portal requests, the URL statuses uninitialized → initialized.

    The messages are locked again first (``aanspraak.workers.lock_held``) and only those
    this worker still holds (pending, ``next_attempt_at`` equal to its ``lease``) are
    written, from the locked rows' values: a worker that outlived its lease must not turn
    another's DELIVERED back into PENDING. Its attempts are stored all the same and counted
    in ``attempt_count`` (they did happen)."""
    now = timezone.now()
    report = BatchReport()
    attempts: list[tuple] = []
    owned: list[tuple] = []
    overrun: list[int] = []
    initialized: list[Message] = []
    delivered: list[Message] = []
    with transaction.atomic():
        held = lock_held(
            OutboundMessage,
            [m.pk for m in messages],
            lease,
            ("attempt_count", "queued_at"),
            pending=MessageState.PENDING,
        )
        lost = set(held.lost)
        for message, body, result in zip(messages, bodies, results, strict=True):
            outcome = result.outcome
            error = result.error[:MAX_ERROR_LENGTH]
            if message.pk in lost:
                attempts.append(_attempt(message, result, outcome, error))
                overrun.append(message.pk)
                report.overrun += 1
                continue
            if message.pk not in held.rows:
                continue  # deleted meanwhile (its order was removed): nothing to record
            attempt_count, queued_at = held.rows[message.pk]
            attempt_count += 1
            when = None
            if outcome is AttemptOutcome.RETRY:
                when = policy.next_attempt_at(queued_at, attempt_count, now, result.retry_after)
                if when is None:
                    outcome = AttemptOutcome.FAILED
                    error = (
                        f"gave up after {attempt_count} attempts (retry horizon "
                        f"{int(policy.horizon_seconds)}s passed); last: {error}"
                    )[:MAX_ERROR_LENGTH]
            attempts.append(_attempt(message, result, outcome, error))
            if outcome is AttemptOutcome.DELIVERED:
                owned.append((message.pk, MessageState.DELIVERED, attempt_count, None, "", now))
                report.delivered += 1
                delivered.append(message)
                if message.proposed_url_status == UrlStatus.INITIALIZED:
                    initialized.append(message)
            elif outcome is AttemptOutcome.FAILED:
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
    _log_delivered(delivered)
    _count_failures(messages, results)
    return report


def _log_delivered(messages: list[Message]) -> None:
    """One log line per delivered message, after commit, with the id of the request that
    created it (docs/operations.md, "Logs"), written as one record (``log_each``)."""
    if not messages or not log.isEnabledFor(logging.INFO):
        return
    log_each(
        log,
        logging.INFO,
        "message delivered",
        [
            {
                "request_id": m.request_id,
                "reference_id": m.reference_id,
                "kind": m.kind,
                "recipient": m.recipient_id,
            }
            for m in messages
        ],
    )


# Recipients' names by primary key, for the failure counter's label: read once per process
# (a renamed party keeps its old label until the worker restarts).
_recipient_names: dict[int, str] = {}


def _count_failures(messages: list[Message], results: list[SendResult]) -> None:
    """``aanspraak_outbound_failures_total``: the batch's attempts that did not deliver, one
    increment per recipient (docs/operations.md, "Metrics"), once the batch is recorded."""
    failures = Counter(
        message.recipient_id
        for message, result in zip(messages, results, strict=True)
        if result.outcome is not AttemptOutcome.DELIVERED
    )
    if not failures:
        return
    unknown = set(failures) - set(_recipient_names)
    if unknown:
        _recipient_names.update(Party.objects.filter(pk__in=unknown).values_list("pk", "name"))
    count_outbound_failures(
        (_recipient_names.get(pk, str(pk)), count) for pk, count in failures.items()
    )


def _attempt(message: Message, result: SendResult, outcome: AttemptOutcome, error: str) -> tuple:
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
    """URL status uninitialized → initialized for the delivered portal requests, through the
    one writer of status changes (``entitlements.status``), with StatusEvents (cause
    ``delivery``). Only rows the table lets move to ``initialized`` are taken (uninitialized:
    a confirmation may have moved it on meanwhile).

    The rows are locked in one statement in id order, the order the confirmation replay
    locks them in, so the two never deadlock. A drain's batch has one recipient: one portal
    and one array of entitlement keys."""
    by_pair: dict[tuple[int, int], Message] = {
        (m.entitlement_id, m.recipient_id): m for m in messages
    }
    if not by_pair:
        return 0
    pairs = Q()
    for portal_pk in sorted({portal for _, portal in by_pair}):
        entitlement_pks = sorted(e for e, p in by_pair if p == portal_pk)
        pairs |= Q(portal_id=portal_pk, entitlement_id__any=entitlement_pks)
    rows = (
        EntitlementUrlStatus.objects.select_for_update()
        .filter(pairs, status__in=sorted(sources(Subject.URL, UrlStatus.INITIALIZED)))
        .order_by("id")
        .values_list("id", "entitlement_id", "portal_id", "status")
    )
    changes = []
    for pk, entitlement_pk, portal_pk, status in rows:
        message = by_pair[(entitlement_pk, portal_pk)]
        cause = Cause(EventCause.DELIVERY, message.pk, str(message.reference_id), now)
        changes.append(
            UrlChange(pk, entitlement_pk, portal_pk, status, UrlStatus.INITIALIZED, cause)
        )
    return write_changes((), changes, now).url_statuses
