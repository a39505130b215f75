"""The outbound messages' metrics (docs/operations.md, "Metrics"): failed attempts counted by
the drain per recipient and batch, against real loopback servers; pending and failed
messages per recipient read at scrape time through their partial indexes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entitlements import outbox
from entitlements.outbox import record
from entitlements.selectors.metrics import outbound_gauges
from tests.support.factories import make_order
from tests.support.loopback import Answer, point_party_at
from tests.support.metrics import scrape, value

pytestmark = pytest.mark.django_db


def failures(samples, party) -> float:
    return value(samples, "aanspraak_outbound_failures_total", recipient=party.name)


def messages(samples, party, state) -> float:
    return value(samples, "aanspraak_outbound_messages", recipient=party.name, state=state)


def test_failed_attempts_are_counted_per_recipient(registry, party_server, client):
    point_party_at(registry.licensor, party_server(lambda r: Answer(503)))
    point_party_at(registry.portal, party_server(lambda r: Answer(200)))
    make_order(registry, 3)
    before = scrape(client)
    assert outbox.drain(registry.licensor.pk).retry == 3
    assert outbox.drain(registry.portal.pk).delivered == 3
    after = scrape(client)
    assert failures(after, registry.licensor) - failures(before, registry.licensor) == 3
    assert failures(after, registry.portal) - failures(before, registry.portal) == 0
    # Retried messages are still pending; the portal's are delivered (not gauged).
    assert messages(after, registry.licensor, "pending") == 3
    assert messages(after, registry.portal, "pending") == 0


def test_messages_given_up_are_gauged_as_failed(registry, party_server, client):
    point_party_at(registry.licensor, party_server(lambda r: Answer(400)))
    make_order(registry, 2)
    before = scrape(client)
    outbox.drain(registry.licensor.pk)
    after = scrape(client)
    assert messages(after, registry.licensor, "failed") == 2
    assert messages(after, registry.licensor, "pending") == 0
    assert failures(after, registry.licensor) - failures(before, registry.licensor) == 2
    # Not drained: the portals' requests wait.
    assert messages(after, registry.portal, "pending") == 2


def test_one_increment_per_batch(registry, party_server, monkeypatch, settings):
    calls = []
    monkeypatch.setattr(record, "count_outbound_failures", lambda pairs: calls.append(list(pairs)))
    settings.HUB_OUTBOUND_BATCH_SIZE = 10
    point_party_at(registry.licensor, party_server(lambda r: Answer(503)))
    make_order(registry, 25)
    assert outbox.drain(registry.licensor.pk).batches == 3
    assert calls == [
        [(registry.licensor.name, 10)],
        [(registry.licensor.name, 10)],
        [(registry.licensor.name, 5)],
    ]


def test_the_gauge_reads_the_partial_indexes(registry, party_server):
    point_party_at(registry.licensor, party_server(lambda r: Answer(400)))
    make_order(registry, 2)
    outbox.drain(registry.licensor.pk)
    with CaptureQueriesContext(connection) as queries:
        outbound_gauges()
    counts = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert len(counts) == 2
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in counts:
            cursor.execute(f"EXPLAIN {query}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    assert "message_pending_claim_idx" in plans[0], plans[0]
    assert "message_failed_idx" in plans[1], plans[1]
