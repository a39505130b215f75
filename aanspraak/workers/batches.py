"""A worker run: batch after batch while rows are due, within a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

C = TypeVar("C")


@dataclass
class BatchRun:
    """How a run ended: ``batches`` worked, ``more`` when the budget ran out first (the
    caller queues another run, behind other work)."""

    batches: int = 0
    more: bool = False


def run_batches(
    claim: Callable[[], C],
    start: Callable[[C], Callable[[], None]],
    budget: float,
    *,
    overlap: bool = False,
) -> BatchRun:
    """Claim a batch (``claim``; an empty one ends the run), ``start`` it, and finish it
    (call what ``start`` returned), until nothing is due or ``budget`` seconds have passed.

    With ``overlap`` the next batch is claimed and started before the one in flight is
    finished, so its calls go out while the previous batch's results are written (the
    outbound drains: the sending window never waits for the database). At most two batches
    are then claimed at once, which the lease allows for (``tuning.lease_seconds``)."""
    deadline = time.monotonic() + budget
    run = BatchRun()
    in_flight: Callable[[], None] | None = None
    while True:
        claimed = None if run.more else claim()
        finish = start(claimed) if claimed else None
        if in_flight is not None:
            in_flight()
            run.batches += 1
            in_flight = None
        if finish is None:
            return run
        if overlap:
            in_flight = finish
        else:
            finish()
            run.batches += 1
        run.more = time.monotonic() >= deadline
