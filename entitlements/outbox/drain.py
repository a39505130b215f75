"""A drain: one recipient's due messages, batch after batch, within a time budget, at most
one drain per recipient at a time."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.utils import timezone

from aanspraak.locks import recipient_lock
from aanspraak.outbound import RetryPolicy
from entitlements.models import (
    OutboundMessage,
)
from entitlements.worker_settings import concurrency, drain_seconds

from .claim import Claim, claim_due, due_filter
from .record import BatchReport
from .render import prepare
from .send import InFlight, finish, start

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
