"""P3, applying confirmations: 50,000 pending confirmations decided by 1 and by 2 worker
processes, against one bulk UPDATE plus one multi-row INSERT of the same rows."""

from __future__ import annotations

import time
import uuid

from ..processes import wait_for
from ..stack import Worker
from .bench import Bench, Figure, median, pending_confirmations, purge_queues
from .orders import order_in_process


def p3_apply(bench: Bench) -> list[Figure]:
    """50,000 pending confirmations for 10,000 entitlements applied by 1 and by 2 worker
    processes, against one bulk UPDATE plus one multi-row INSERT of the same rows."""
    from benchmarks import apply_workload

    students = 2_500 if bench.quick else 10_000
    orders: dict[int, list[int]] = {1: [], 2: []}
    for concurrency in orders:
        for run in range(bench.runs):
            pk = order_in_process(f"DO-P3-c{concurrency}-{run}-{uuid.uuid4().hex[:6]}", students)
            # Delivered as dispatch records it (portal URL statuses initialized, with events).
            apply_workload.mark_requests_delivered(pk)
            orders[concurrency].append(pk)
    purge_queues(bench)
    rates: dict[int, list[float]] = {1: [], 2: []}
    counts = []
    for concurrency, pks in orders.items():
        worker = Worker(bench.env, concurrency=concurrency).start()
        try:
            for pk in pks:
                inserted = apply_workload.make_pending_confirmations(pk)
                counts.append(inserted)
                started = time.perf_counter()
                _wake_confirmation_workers()
                wait_for(
                    lambda: pending_confirmations(bench) == 0,
                    timeout=900,
                    what="every confirmation decided",
                    interval=0.1,
                )
                rates[concurrency].append(inserted / (time.perf_counter() - started))
        finally:
            worker.stop()
    # The floor writes as many status-event rows as the worker decided confirmations.
    floor_rates = [
        median(counts) / apply_workload.raw_sql_floor(orders[2][-1], int(median(counts)))
        for _ in range(bench.runs)
    ]
    one, two, floor = median(rates[1]), median(rates[2]), median(floor_rates)
    bench.notes.append(
        f"P3: {median(counts):,.0f} pending confirmations per run for {students:,} "
        "entitlements; the floor's rate counts the rows it writes per second."
    )
    return [
        Figure("P3", "decided per second, 1 process", one, floor, "/s", "-", True),
        Figure("P3", "decided per second, 2 processes", two, floor, "/s",
               "≥ 2,000/s and ≥ 0.10× floor", two >= 2000 and two >= 0.1 * floor),
    ]  # fmt: skip


def _wake_confirmation_workers() -> None:
    from confirmations.services.wake import wake_workers

    if not wake_workers():
        raise RuntimeError("could not wake the confirmation workers")
