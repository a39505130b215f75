"""GET /metrics (docs/operations.md, "Metrics"): the exposition parses, the HTTP counters and
histogram move with real requests through Django's stack, the route label is the URL
pattern, and the bearer token guards the page when one is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.urls import resolve
from prometheus_client import values

from aanspraak.metrics import HTTP_REQUESTS
from aanspraak.metrics.middleware import HttpMetricsMiddleware
from tests.support.metrics import parse, scrape, value

pytestmark = pytest.mark.django_db

READ_ROUTE = "entitlements/deliveryorder/<str:id>"


def requests_total(samples, method, route, status) -> float:
    return value(
        samples, "aanspraak_http_requests_total", method=method, route=route, status=str(status)
    )


def test_the_exposition_parses_with_every_family_and_its_type(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, types = parse(response.content.decode())
    assert types["aanspraak_http_requests"] == "counter"
    assert types["aanspraak_http_request_duration_seconds"] == "histogram"
    assert types["aanspraak_confirmations"] == "counter"
    assert types["aanspraak_confirmations_pending"] == "gauge"
    assert types["aanspraak_apply_lag_seconds"] == "gauge"
    assert types["aanspraak_outbound_messages"] == "gauge"
    assert value(samples, "aanspraak_scrape_database_up") == 1.0
    # Every kind and outcome exists from the start.
    for kind in ("confirmation", "activation"):
        for outcome in ("applied", "duplicate", "stale", "rejected"):
            assert ("aanspraak_confirmations_total", frozenset(
                {"kind": kind, "outcome": outcome}.items()
            )) in samples  # fmt: skip
    assert all(name.startswith("aanspraak_") for name in types)


def test_requests_are_counted_by_method_route_pattern_and_status(client):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/entitlements/deliveryorder/ORDER-4711").status_code == 401
    assert client.get("/no/such/page-4711").status_code == 404
    after = scrape(client)
    assert (
        requests_total(after, "GET", READ_ROUTE, 401)
        - requests_total(before, "GET", READ_ROUTE, 401)
        == 3
    )
    assert (
        requests_total(after, "GET", "unmatched", 404)
        - requests_total(before, "GET", "unmatched", 404)
        == 1
    )
    # The histogram counted them under the pattern too, in its buckets and its sum.
    count = "aanspraak_http_request_duration_seconds_count"
    assert value(after, count, route=READ_ROUTE) - value(before, count, route=READ_ROUTE) == 3
    assert value(after, "aanspraak_http_request_duration_seconds_sum", route=READ_ROUTE) > 0
    inf = value(
        after, "aanspraak_http_request_duration_seconds_bucket", route=READ_ROUTE, le="+Inf"
    )
    assert inf == value(after, count, route=READ_ROUTE)
    # Never a raw path in a label.
    labels = {v for _, label_set in after for _, v in label_set}
    assert not any("4711" in label for label in labels)


def test_a_request_refused_before_url_resolution_is_counted_under_its_pattern(client, settings):
    settings.HUB_MAX_BODY_BYTES = 10
    before = scrape(client)
    response = client.put(
        "/entitlements/confirmations", b'{"a": "more than ten bytes"}', "application/json"
    )
    assert response.status_code == 413
    after = scrape(client)
    route = "entitlements/confirmations"
    assert requests_total(after, "PUT", route, 413) - requests_total(before, "PUT", route, 413) == 1


def test_an_unknown_method_is_counted_as_other(client):
    before = scrape(client)
    assert client.generic("BREW", "/healthz").status_code == 405
    after = scrape(client)
    assert (
        requests_total(after, "other", "healthz", 405)
        - requests_total(before, "other", "healthz", 405)
        == 1
    )
    assert not any(("method", "BREW") in labels for _, labels in after)


def test_the_metric_children_are_looked_up_once_per_method_route_and_status(monkeypatch):
    """The hot path does not build label sets per request (docs/operations.md, "Metrics")."""
    calls = []
    labels = HTTP_REQUESTS.labels
    monkeypatch.setattr(HTTP_REQUESTS, "labels", lambda *a: calls.append(a) or labels(*a))
    from django.http import HttpResponse

    middleware = HttpMetricsMiddleware(lambda request: HttpResponse(status=202))
    for _ in range(5):
        request = RequestFactory().put("/entitlements/confirmations")
        request.resolver_match = resolve("/entitlements/confirmations")
        middleware(request)
    assert calls == [("PUT", "entitlements/confirmations", "202")]


def test_token_protects_the_page_when_set(client, settings):
    settings.HUB_METRICS_TOKEN = "metrics-token-0123456789"
    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-9876543210")
    basic = client.get("/metrics", HTTP_AUTHORIZATION="Basic metrics-token-0123456789")
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert b"metrics-token" not in response.content
        assert b"aanspraak_" not in response.content
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    assert right.status_code == 200 and b"aanspraak_http_requests_total" in right.content


def test_open_without_a_token(client, settings):
    settings.HUB_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


def test_metrics_run_in_multiprocess_mode_in_the_configured_directory(client, settings):
    assert values.ValueClass.__name__ == "MmapedValue"
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert directory == Path(settings.PROMETHEUS_MULTIPROC_DIR)
    client.get("/healthz")
    assert (directory / f"counter_{os.getpid()}.db").exists()
    assert (directory / f"histogram_{os.getpid()}.db").exists()


def test_the_scrape_still_serves_the_counters_when_the_database_fails(client, monkeypatch):
    from django.db import OperationalError

    from aanspraak.metrics import scrape as scrape_module

    def broken():
        raise OperationalError("the database went away")

    monkeypatch.setattr(scrape_module, "_sources", [broken])
    samples = scrape(client)
    assert value(samples, "aanspraak_scrape_database_up") == 0.0
    assert any(name == "aanspraak_http_requests_total" for name, _ in samples)
