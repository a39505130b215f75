"""Sending a prepared batch concurrently over pooled keep-alive connections."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from aanspraak.outbound import RetryPolicy, send
from aanspraak.workers.tuning import concurrency

from .claim import Claim
from .record import BatchReport, record_results
from .render import Prepared, prepare

log = logging.getLogger(__name__)


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
