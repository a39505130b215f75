"""What request ids and request logging cost per request, and the worker's per-row lines per
batch (docs/operations.md, "Logs"): ``python -m benchmarks.request_log_overhead``.

The request path: a request through ``RequestIdMiddleware`` around a view that answers 202
at once, against the same view without it; the configured handler (JSON unless
HUB_LOG_FORMAT=text) writes to /dev/null. The worker: 500 decided confirmations logged as one
record (``log_each``) against 500 ``log.info`` calls. Not part of ``make bench``: a
micro-benchmark of the added CPU, to hold against P2's ~2.5 ms per confirmation.
"""

from __future__ import annotations

import logging
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from aanspraak.log_format import log_each  # noqa: E402
from aanspraak.request_ids import RequestIdMiddleware  # noqa: E402
from benchmarks.logs import log_to_devnull  # noqa: E402

# Many short rounds, the best kept, on the thread's CPU clock: the least disturbed by other
# processes on a busy machine.
ROUNDS = 25
CALLS = 5_000
BATCH = 500


def _best(run, calls: int) -> float:
    """The best of ROUNDS runs, in CPU µs per call."""
    times = []
    for _ in range(ROUNDS):
        started = time.thread_time()
        run(calls)
        times.append((time.thread_time() - started) / calls * 1e6)
    return min(times)


def main() -> None:
    log_to_devnull()
    factory = RequestFactory()
    with_id = factory.put("/entitlements/confirmations", HTTP_X_REQUEST_ID="abc-123")
    without_id = factory.put("/entitlements/confirmations")

    def view(request):
        return HttpResponse(status=202)

    middleware = RequestIdMiddleware(view)

    def bare(n):
        for _ in range(n):
            view(with_id)

    def client_id(n):
        for _ in range(n):
            middleware(with_id)

    def new_id(n):
        for _ in range(n):
            middleware(without_id)

    base = _best(bare, CALLS)
    given = _best(client_id, CALLS) - base
    fresh = _best(new_id, CALLS) - base
    print(
        f"request path: {base:.1f} µs without the middleware; added per request "
        f"{given:.1f} µs (the client's id), {fresh:.1f} µs (a new one)"
    )

    log = logging.getLogger("confirmations.services.apply")
    items = [
        {"request_id": f"r{i}", "receive_id": f"rcv-{i}", "kind": "confirmation", "outcome": "ok"}
        for i in range(BATCH)
    ]

    def one_record(n):
        for _ in range(n):
            log_each(log, logging.INFO, "confirmation decided", items)

    def many_records(n):
        for _ in range(n):
            for item in items:
                log.info("confirmation decided", extra=item)

    each = _best(one_record, 10) * 1e-3
    calls = _best(many_records, 4) * 1e-3
    print(
        f"worker, {BATCH} lines per batch: {each:.2f} ms as one record, "
        f"{calls:.2f} ms as {BATCH} log calls (best of {ROUNDS} runs)"
    )


if __name__ == "__main__":
    main()
