"""What the HTTP metrics cost per request (docs/operations.md, "Metrics"): the middleware of
``aanspraak.metrics.middleware`` around a view that returns at once, against that view
alone, in prometheus_client's multiprocess mode (a directory of its own, as in production).

    python -m benchmarks.metrics_overhead [--requests 200000]

Prints the CPU time per request with and without the middleware and their difference: the
counter, the histogram and the route look-up on one thread, the same code the hub runs on
every request. Not part of ``make bench`` (whose P2 runs the whole hub with the metrics on).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time


def _per_request(call, request, n: int) -> float:
    """Seconds of CPU per call, the best of three rounds of ``n``."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            call(request)
        best = min(best, (time.process_time() - started) / n)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="aanspraak-metrics-bench-")
    # Before Django (and so prometheus_client) is set up: the multiprocess mode is chosen then.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import django

    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve
    from prometheus_client import values

    from aanspraak.metrics.middleware import HttpMetricsMiddleware

    assert values.ValueClass.__name__ == "MmapedValue", "not in multiprocess mode"
    response = HttpResponse(status=202)

    def view(request):
        return response

    request = RequestFactory().put("/entitlements/confirmations")
    request.resolver_match = resolve("/entitlements/confirmations")
    middleware = HttpMetricsMiddleware(view)
    bare = _per_request(view, request, args.requests)
    with_metrics = _per_request(middleware, request, args.requests)
    # A request refused before URL resolution (a 413): the middleware resolves its path.
    refused = RequestFactory().put("/entitlements/confirmations")
    refused.resolver_match = None
    response_413 = HttpMetricsMiddleware(lambda r: HttpResponse(status=413))
    resolving = _per_request(response_413, refused, args.requests // 10)
    shutil.rmtree(directory, ignore_errors=True)
    print(f"multiprocess directory: {directory}")
    print(f"view alone:                    {bare * 1e6:7.2f} µs per request")
    print(f"with the metrics middleware:   {with_metrics * 1e6:7.2f} µs per request")
    print(f"metrics overhead:              {(with_metrics - bare) * 1e6:7.2f} µs per request")
    print(f"refused before resolution:     {resolving * 1e6:7.2f} µs per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
