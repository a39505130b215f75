"""Counting and timing every HTTP request (``aanspraak_http_requests_total``,
``aanspraak_http_request_duration_seconds``) on the hot path (docs/operations.md, "Metrics").

The route label is the URL pattern that matched (``request.resolver_match.route``), never the
raw path: one series per endpoint, not per delivery order id. A request refused before URL
resolution (a 413 from the request checks) is resolved here to name its pattern; a 404 that
matched no pattern is ``unmatched``. The method is one of HTTP's, else ``other``: a client cannot
make new series up.

Cost: the metric children of a (method, route, status) are looked up once per process and
kept (prometheus_client's ``labels()`` takes a lock and builds a key per call); a request
then costs two clock reads, a dictionary look-up and three writes into the process's
memory-mapped file (docs/operations.md, "Metrics", has the measured figure).
"""

from __future__ import annotations

from time import perf_counter

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from . import HTTP_DURATION, HTTP_REQUESTS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
UNMATCHED = "unmatched"


def route_of(request: HttpRequest) -> str:
    """The URL pattern ``request`` matched, or ``unmatched``."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return UNMATCHED
    return match.route


class HttpMetricsMiddleware:
    """Counts every response by method, route and status and times it by route. Second in
    ``MIDDLEWARE``, right after the request id's, so the time and the status include every
    other middleware's."""

    def __init__(self, get_response):
        self.get_response = get_response
        # (method, route, status) -> (counter child, histogram child)
        self._children: dict[tuple[str, str, int], tuple] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = perf_counter()
        response = self.get_response(request)
        elapsed = perf_counter() - started
        method = request.method if request.method in METHODS else "other"
        match = getattr(request, "resolver_match", None)
        if match is not None:
            route = match.route
        elif response.status_code == 404:
            route = UNMATCHED  # Django's resolution found no pattern: not walked again
        else:
            route = route_of(request)  # refused before resolution (413, 415, 400/12)
        key = (method, route, response.status_code)
        children = self._children.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(method, route, str(response.status_code)),
                HTTP_DURATION.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        return response
