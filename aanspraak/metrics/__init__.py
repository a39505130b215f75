"""The hub's Prometheus metrics (docs/operations.md, "Metrics"): the families every process
writes, all prefixed ``aanspraak_``.

prometheus_client runs in multiprocess mode: each process (gunicorn worker, Celery worker)
writes its values to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``
sums the files of every process (``aanspraak.metrics.scrape``). The directory is chosen in
config/settings.py, which puts it into the environment before this module is imported:
prometheus_client picks its multiprocess storage when it is first imported.

Counters only: a value that comes from the database (pending confirmations, the age of the
oldest, outbound messages per state) is read at scrape time (``scrape``), never kept in a
process. The workers count set-based, one increment per batch and outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Histogram

# Seconds; finer below 50 ms, where the hub's request paths are (a confirmation costs some
# 2.5 ms of CPU, docs/performance.md, P2), up to the long streamed reads.
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

HTTP_REQUESTS = Counter(
    "aanspraak_http_requests",
    "HTTP requests answered, by method, URL pattern (route) and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "aanspraak_http_request_duration_seconds",
    "Time from the request reaching Django until its response is ready (a streamed body's "
    "first chunk), by URL pattern (route).",
    ["route"],
    buckets=DURATION_BUCKETS,
)
CONFIRMATIONS = Counter(
    "aanspraak_confirmations",
    "Confirmations and activations decided by the apply workers, by kind and outcome "
    "(applied, duplicate, stale, rejected); a later re-decision is not counted again.",
    ["kind", "outcome"],
)
OUTBOUND_FAILURES = Counter(
    "aanspraak_outbound_failures",
    "Outbound attempts that did not deliver (an error answer, a timeout, a refused "
    "connection; retried or given up), by recipient.",
    ["recipient"],
)

CONFIRMATION_KINDS = ("confirmation", "activation")
CONFIRMATION_OUTCOMES = ("applied", "duplicate", "stale", "rejected")

# Every kind and outcome exists from the start at 0, so that rate() sees the first one.
for _kind in CONFIRMATION_KINDS:
    for _outcome in CONFIRMATION_OUTCOMES:
        CONFIRMATIONS.labels(_kind, _outcome)


def count_confirmations(decided: Mapping[tuple[str, str], int]) -> None:
    """Add a batch's decisions: ``{(kind, outcome): how many}``, one increment each."""
    for (kind, outcome), count in decided.items():
        if count:
            CONFIRMATIONS.labels(kind, outcome).inc(count)


def count_outbound_failures(failures: Iterable[tuple[str, int]]) -> None:
    """Add a batch's failed attempts: ``(recipient name, how many)`` pairs."""
    for recipient, count in failures:
        if count:
            OUTBOUND_FAILURES.labels(recipient).inc(count)
