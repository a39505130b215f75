"""Celery tasks of the confirmations app: thin shells around the services.

Both are idempotent: ``apply_pending`` only ever claims rows still pending (a task redelivered
after a crash finds the work done or rolled back), and the sweep only enqueues a wake-up.
"""

from celery import shared_task

from .selectors.pending import has_overdue_pending
from .services.apply import apply_all_pending
from .services.wake import clear_wake, wake_workers


@shared_task(name="confirmations.tasks.apply_pending")
def apply_pending() -> int:
    """Apply pending confirmations in batches until none is left; the number claimed."""
    clear_wake()  # before claiming: a confirmation committed from now on wakes us again
    # A backlog larger than one batch wakes one more worker (debounced like the requests'
    # wake-ups), which does the same: every idle worker process joins in, none is flooded.
    return apply_all_pending(on_more=wake_workers)


@shared_task(name="confirmations.tasks.sweep_pending")
def sweep_pending() -> bool:
    """Periodic: wake the workers when confirmations have been pending for too long (a
    wake-up lost while Redis was down, a worker killed mid-batch)."""
    if has_overdue_pending():
        apply_pending.delay()
        return True
    return False
