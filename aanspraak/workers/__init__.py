"""The one worker machinery of the hub's queues (docs/architecture.md, "Workers").

A queue is a table whose due rows say ``state = pending`` and ``next_attempt_at <= now``.
A worker run is always the same four steps, used by the outbound drains
(``entitlements.outbox``) and the enrollment resolver (``entitlements.services.enrollment``):

1. ``claim_leased``: lock a batch of due rows with ``SELECT ... FOR UPDATE SKIP LOCKED``
   (workers never wait for each other) and lease them by moving ``next_attempt_at`` ahead, so
   a crashed worker's batch becomes due again when the lease runs out;
2. do the work outside any transaction (calls to the chain's parties);
3. ``lock_held``: lock the rows again, in id order, and keep only those this worker still
   holds (pending, lease unchanged): a worker that outlived its lease never undoes what the
   worker that took over wrote;
4. ``run_batches``: repeat while rows are due, within a time budget (then the task queues
   itself again, behind other work).

``tuning`` reads the shared settings: calls in flight, time budget, lease length.
"""

from .batches import BatchRun, run_batches
from .claim import Claim, Held, claim_leased, lock_held

__all__ = ["BatchRun", "Claim", "Held", "claim_leased", "lock_held", "run_batches"]
