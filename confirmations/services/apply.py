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
5. write entitlements, URL statuses, status events (the one writer of status changes,
   ``entitlements.status``) and the confirmations' outcomes (four statements,
   ``aanspraak.db.recordset``).

Rows are read as plain values (``values_list``), never as model instances: per-row ORM
objects and ``bulk_update``'s CASE expressions were most of the time (docs/performance.md,
"P3: the apply worker").
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from aanspraak.db.recordset import update_rows
from aanspraak.log_format import log_each
from aanspraak.metrics import count_confirmations
from confirmations.models import Confirmation, ConfirmationState
from entitlements.rules.transitions import Outcome

from .checks import check_batch
from .claim import ClaimedRow, claim
from .replay_batch import Replayed, replay_batch

log = logging.getLogger(__name__)

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
    rows = list(
        Confirmation.objects.filter(state=ConfirmationState.PENDING)
        .order_by("received_at")
        .values_list("id", "kind")[:limit]
    )
    total = BatchResult()
    for pk, kind in rows:
        try:
            result = apply_pending_batch(1, only=pk)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("confirmation %s cannot be applied; set aside as rejected", pk)
            Confirmation.objects.filter(pk=pk, state=ConfirmationState.PENDING).update(
                state=Outcome.REJECTED,
                reason=QUARANTINE_REASON.format(pk=pk),
                decided_at=timezone.now(),
            )
            count_confirmations({(kind, Outcome.REJECTED.value): 1})
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
        batch = claim(pending, limit)
        if not batch:
            return BatchResult()
        log.info("claimed %d confirmations", len(batch))
        if settings.HUB_APPLY_BATCH_DELAY:
            time.sleep(settings.HUB_APPLY_BATCH_DELAY)  # test only: a window to kill us in
        now = timezone.now()
        accepted, reasons = check_batch(batch)
        result = replay_batch(accepted, now) if accepted else Replayed()

        decided: list[tuple] = []
        outcomes: Counter[tuple[str, str]] = Counter()
        for row in batch:
            if row.pk in reasons:
                decided.append((row.pk, Outcome.REJECTED, reasons[row.pk], None, None))
                outcomes[row.kind, Outcome.REJECTED.value] += 1
            elif row.pk in result.outcomes:
                decision = result.outcomes[row.pk]
                outcomes[row.kind, decision.outcome.value] += 1
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
    # Counted once committed, one increment per kind and outcome (docs/operations.md,
    # "Metrics"); the earlier rows a replay re-decided were counted when first decided.
    count_confirmations(outcomes)
    deferred = len(batch) - len(decided)
    _log_decided(batch, decided)
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


def _log_decided(batch: list[ClaimedRow], decided: list[tuple]) -> None:
    """One log line per decided confirmation, after commit, with the id of the request that
    stored it (docs/operations.md, "Logs"): written as one record (``log_each``), so a batch
    of 500 costs one handler call, not 500."""
    if not decided or not log.isEnabledFor(logging.INFO):
        return
    rows = {row.pk: row for row in batch}
    log_each(
        log,
        logging.INFO,
        "confirmation decided",
        [
            {
                "request_id": rows[pk].request_id,
                "receive_id": rows[pk].receive_id,
                "kind": rows[pk].kind,
                "outcome": outcome,
            }
            for pk, outcome, *_ in decided
        ],
    )
