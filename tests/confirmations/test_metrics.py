"""The confirmations' metrics (docs/operations.md, "Metrics"): the apply worker counts its
decisions by kind and outcome, one increment per batch and outcome; the pending gauge and
the apply lag are read from the database at scrape time, by the partial index of pending
rows, with a constant number of queries per scrape."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from confirmations.models import Confirmation
from confirmations.selectors.metrics import pending_gauges
from confirmations.services import apply
from confirmations.services.apply import apply_all_pending
from tests.support.confirm_helpers import activation_body, licensor_body, request_to, store
from tests.support.factories import make_order
from tests.support.metrics import scrape, value

pytestmark = pytest.mark.django_db


def decided(samples, kind, outcome) -> float:
    return value(samples, "aanspraak_confirmations_total", kind=kind, outcome=outcome)


def confirm_all(registry, order, status="entitled", **kwargs):
    for entitlement in order.entitlements.order_by("id"):
        store(
            registry.licensor,
            licensor_body(request_to(entitlement, registry.licensor), status, **kwargs),
        )


def test_outcomes_are_counted_by_kind_and_outcome(registry, client):
    order = make_order(registry, 3)
    confirm_all(registry, order)
    confirm_all(registry, order)  # the same status again: duplicate
    bad = licensor_body(request_to(order.entitlements.first(), registry.licensor))
    bad["productId"] = "nope"
    store(registry.licensor, bad)
    store(registry.portal, activation_body(order.entitlements.first()))
    before = scrape(client)
    assert apply_all_pending() == 8
    after = scrape(client)

    def moved(kind, outcome):
        return decided(after, kind, outcome) - decided(before, kind, outcome)

    assert moved("confirmation", "applied") == 3
    assert moved("confirmation", "duplicate") == 3
    assert moved("confirmation", "rejected") == 1
    # Every stored decision counted once, under its kind and outcome; nothing else.
    stored = {
        (kind, state): n
        for kind, state, n in Confirmation.objects.values_list("kind", "state").annotate(
            n=Count("*")
        )
    }
    assert sum(stored.values()) == 8
    for kind in ("confirmation", "activation"):
        for outcome in ("applied", "duplicate", "stale", "rejected"):
            assert moved(kind, outcome) == stored.get((kind, outcome), 0), (kind, outcome)


def test_one_increment_per_batch_and_outcome(registry, monkeypatch):
    calls = []
    monkeypatch.setattr(apply, "count_confirmations", lambda counts: calls.append(dict(counts)))
    order = make_order(registry, 25)
    confirm_all(registry, order)
    assert apply.apply_pending_batch(batch_size=100).claimed == 25
    assert calls == [{("confirmation", "applied"): 25}]


def test_a_confirmation_set_aside_is_counted_as_rejected(registry, monkeypatch, client):
    order = make_order(registry, 1)
    confirm_all(registry, order)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(apply, "replay_batch", broken)
    before = scrape(client)
    assert apply_all_pending() == 1
    after = scrape(client)
    assert (
        decided(after, "confirmation", "rejected") - decided(before, "confirmation", "rejected")
        == 1
    )


def test_pending_and_lag_are_read_at_scrape_time(registry, client):
    samples = scrape(client)
    assert value(samples, "aanspraak_confirmations_pending") == 0
    assert value(samples, "aanspraak_apply_lag_seconds") == 0
    order = make_order(registry, 3)
    confirm_all(registry, order)
    oldest = Confirmation.objects.order_by("id").first()
    Confirmation.objects.filter(pk=oldest.pk).update(
        received_at=timezone.now() - dt.timedelta(seconds=120)
    )
    samples = scrape(client)
    assert value(samples, "aanspraak_confirmations_pending") == 3
    assert 120 <= value(samples, "aanspraak_apply_lag_seconds") < 180
    apply_all_pending()
    samples = scrape(client)
    assert value(samples, "aanspraak_confirmations_pending") == 0
    assert value(samples, "aanspraak_apply_lag_seconds") == 0


def test_the_pending_gauges_read_the_partial_index(registry):
    order = make_order(registry, 2)
    confirm_all(registry, order)
    with CaptureQueriesContext(connection) as queries:
        pending_gauges()
    (query,) = [q["sql"] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {query}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "confirmation_pending_idx" in plan, plan


def test_a_scrape_takes_a_constant_number_of_queries(registry, client):
    def queries_of_a_scrape() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/metrics").status_code == 200
        return len(queries.captured_queries)

    small = queries_of_a_scrape()
    order = make_order(registry, 30)  # messages to the licensor and two portals
    confirm_all(registry, order)
    large = queries_of_a_scrape()
    assert small <= large <= 8  # the party names are read only once there are messages
    assert large == queries_of_a_scrape()
