"""Enqueueing worker wake-ups after a commit without ever stalling or failing the caller.

A wake-up only makes work start sooner: the periodic sweeps find every due message and
lookup anyway. So a broker that is down must cost the request at most one failed connection
attempt, not Celery's publish retries or kombu's reconnect loop (which by default sleeps
for seconds before it gives up), and must never raise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from celery import current_app

log = logging.getLogger(__name__)


def enqueue_quietly(task_name: str, calls: Sequence[tuple]) -> int:
    """Enqueue the task named ``task_name`` once per argument tuple in ``calls`` with no
    publish retry. By name, so that services never import the tasks that call them. On a
    broker error the rest is skipped (the broker is down for all of them) and the error is
    logged. Returns how many were enqueued."""
    sent = 0
    if not calls:
        return sent
    try:
        with current_app.producer_or_acquire() as producer:
            # One quick connection attempt; a connected producer returns at once.
            producer.connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=2
            )
            for args in calls:
                current_app.send_task(task_name, args, retry=False, producer=producer)
                sent += 1
    except Exception:  # any broker failure: the periodic sweep repairs the lost wake-up
        log.warning(
            "could not enqueue %s (%d of %d sent); the sweep will pick the work up",
            task_name,
            sent,
            len(calls),
            exc_info=True,
        )
    return sent
