"""Celery tasks of the confirmations app: thin shells around the services.

Both are idempotent: ``apply_pending`` only ever claims rows still pending (a task redelivered
after a crash finds the work done or rolled back), and the sweep only enqueues a wake-up.
"""

from celery import shared_task
from django.conf import settings

from .selectors.pending import has_overdue_pending
from .services.apply import apply_all_pending
from .services.wake import clear_wake, hold_wake, wake_another_worker


@shared_task(name="confirmations.tasks.apply_pending")
def apply_pending() -> int:
    """Apply pending confirmations in batches until none is left; the number claimed."""
    # Holding the wake-up key while working, clearing it before the last claim: see
    # services/wake.py. A backlog larger than one batch wakes one more worker, which does
    # the same: every idle worker process joins in, none is flooded.
    hold_wake()
    return apply_all_pending(
        on_more=wake_another_worker,
        on_batch=hold_wake,
        before_last_claim=clear_wake,
        gather_seconds=settings.HUB_APPLY_GATHER_SECONDS,
    )


@shared_task(name="confirmations.tasks.sweep_pending")
def sweep_pending() -> bool:
    """Periodic: wake the workers when confirmations have been pending for too long (a
    wake-up lost while Redis was down, a worker killed mid-batch)."""
    if has_overdue_pending():
        apply_pending.delay()
        return True
    return False
