"""A drain: one recipient's due messages, batch after batch, within a time budget
(``aanspraak.workers.run_batches``), at most one drain per recipient at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.utils import timezone

from aanspraak.locks import recipient_lock
from aanspraak.outbound import RetryPolicy
from aanspraak.workers import run_batches
from aanspraak.workers.tuning import concurrency, drain_seconds
from entitlements.models import OutboundMessage

from .claim import Claim, claim_due, due_filter
from .record import BatchReport
from .render import prepare
from .send import finish, start

log = logging.getLogger(__name__)


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
            due_filter(timezone.now()), recipient_id=recipient_id
        ).exists()
    return report


def _drain_locked(recipient_id: int, budget: float, report: DrainReport) -> None:
    policy = RetryPolicy.from_settings()
    started = timezone.now()
    # One pool for the whole drain, and the next batch is claimed and queued on it before
    # the one in flight is recorded (``run_batches(overlap=True)``): the requests never wait
    # for the database, and the database work of one batch overlaps the sending of the next.
    with ThreadPoolExecutor(max_workers=concurrency(), thread_name_prefix="outbound") as pool:

        def begin(claim: Claim) -> Callable[[], None]:
            queued = start(prepare(claim), pool)
            return lambda: report.add(finish(queued, policy))

        run = run_batches(
            lambda: claim_due(recipient_id, due_by=started), begin, budget, overlap=True
        )
    report.batches += run.batches
    report.more = run.more
