"""Review findings F3 (lease overrun), F4 (re-send horizon), F9 (one drain per recipient,
the outbound queue) and F10 (wake-ups never stall on a broker that is down)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from aanspraak.enqueue import enqueue_quietly
from aanspraak.locks import LOCK_NAMESPACE, _file_lock, _key
from config.celery import app
from entitlements import outbox, tasks
from entitlements.models import DeliveryAttempt, OutboundMessage
from entitlements.services.resend import resend_messages
from tests.support.factories import make_order
from tests.support.loopback import Answer, LoopbackParty

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def licensor_server(registry):
    """A loopback licensor answering from ``server.answers`` (a list, first answer first;
    200 once it is empty)."""
    answers: list[Answer] = []
    server = LoopbackParty(lambda r: answers.pop(0) if answers else Answer(200)).start()
    server.answers = answers
    registry.licensor.endpoint_base_url = server.base_url
    registry.licensor.save()
    yield server
    server.stop()


# --- F3: a worker that outlived its lease ----------------------------------------------------


def expire_lease(ids: list[int]) -> None:
    """What the clock does to a worker that takes longer than its lease."""
    OutboundMessage.objects.filter(id__in=ids).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )


def test_late_result_of_a_lost_lease_does_not_overwrite_the_delivery(registry, licensor_server):
    make_order(registry, 2)
    first = outbox.claim_due(registry.licensor.pk)
    assert len(first) == 2
    expire_lease(first.ids)
    second = outbox.claim_due(registry.licensor.pk)
    assert sorted(second.ids) == sorted(first.ids) and second.lease != first.lease

    # The second worker delivers; then the first one, which still had the batch in flight,
    # gets 503s and records them late.
    licensor_server.answers.extend([Answer(200), Answer(200), Answer(503), Answer(503)])
    assert outbox.send_batch(second).delivered == 2
    late = outbox.send_batch(first)
    assert late.overrun == 2 and late.total == 0

    for message in OutboundMessage.objects.filter(id__in=first.ids):
        assert message.state == "delivered"
        assert message.next_attempt_at is None and message.delivered_at is not None
        # Both attempts happened, both are stored and counted.
        outcomes = sorted(DeliveryAttempt.objects.filter(message=message).values_list("outcome"))
        assert outcomes == [("delivered",), ("retry",)]
        assert message.attempt_count == 2
    assert len(licensor_server.received) == 4


def test_the_new_owner_counts_the_late_attempt_too(registry, licensor_server):
    """The late worker records first, the new owner after it: neither count is lost."""
    make_order(registry, 1)
    first = outbox.claim_due(registry.licensor.pk)
    expire_lease(first.ids)
    second = outbox.claim_due(registry.licensor.pk)
    licensor_server.answers.extend([Answer(503), Answer(503)])
    assert outbox.send_batch(first).overrun == 1
    assert outbox.send_batch(second).retry == 1
    message = OutboundMessage.objects.get(id=first.ids[0])
    assert message.state == "pending" and message.attempt_count == 2
    assert message.attempts.count() == 2


def test_a_resend_during_the_send_wins_over_the_late_result(registry, licensor_server):
    make_order(registry, 1)
    claim = outbox.claim_due(registry.licensor.pk)
    OutboundMessage.objects.filter(id__in=claim.ids).update(state="failed")
    resend_messages(OutboundMessage.objects.filter(id__in=claim.ids))
    licensor_server.answers.append(Answer(400))
    assert outbox.send_batch(claim).overrun == 1
    message = OutboundMessage.objects.get(id=claim.ids[0])
    assert message.state == "pending" and message.next_attempt_at <= timezone.now()


# --- F4: a re-send gets the whole retry horizon ----------------------------------------------


def test_resend_of_an_old_message_gets_the_full_horizon(registry, licensor_server, settings):
    settings.HUB_RETRY_HORIZON_SECONDS = 3600
    settings.HUB_RETRY_BASE_SECONDS = 1
    make_order(registry, 2)
    long_ago = timezone.now() - dt.timedelta(days=3)
    old = OutboundMessage.objects.filter(recipient=registry.licensor)
    OutboundMessage.objects.filter(pk__in=old.values("pk")).update(
        created_at=long_ago, queued_at=long_ago, state="failed", attempt_count=7
    )
    resent, left = list(old.order_by("id"))
    resend_messages(OutboundMessage.objects.filter(pk=resent.pk))
    # The other one is due too, but keeps its old horizon: one 503 and it fails for good.
    OutboundMessage.objects.filter(pk=left.pk).update(state="pending", next_attempt_at=None)
    licensor_server.answers.extend([Answer(503), Answer(503)])
    outbox.drain(registry.licensor.pk)

    resent.refresh_from_db()
    assert resent.queued_at > long_ago + dt.timedelta(days=2)
    assert resent.state == "pending" and resent.next_attempt_at > timezone.now()
    assert resent.attempt_count == 1  # counted afresh from the re-send
    left.refresh_from_db()
    assert left.state == "failed" and "retry horizon" in left.last_error


def test_new_messages_are_queued_at_their_insert(registry):
    before = timezone.now()
    make_order(registry, 2)
    stamps = set(OutboundMessage.objects.values_list("queued_at", flat=True))
    assert all(s >= before - dt.timedelta(seconds=5) for s in stamps)


# --- F9: one drain per recipient; the outbound queue ----------------------------------------


@pytest.fixture
def other_session():
    """A second PostgreSQL session on the test database (another worker)."""
    s = connection.settings_dict
    conn = psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=s["NAME"],
        autocommit=True,
    )
    yield conn
    conn.close()


def test_a_second_drain_of_the_same_recipient_returns_at_once(
    registry, licensor_server, other_session, monkeypatch
):
    make_order(registry, 3)
    requeued = []
    monkeypatch.setattr(tasks.drain_recipient, "apply_async", lambda a, **kw: requeued.append(a))
    monkeypatch.setattr(tasks.drain_recipient, "delay", lambda *a: requeued.append(a))
    key = [LOCK_NAMESPACE, _key(registry.licensor.pk)]
    # Another worker's drain of the licensor is running (it holds the recipient's lock).
    other_session.execute("SELECT pg_advisory_lock(%s, %s)", key)

    report = outbox.drain(registry.licensor.pk)
    assert report.busy and report.total == 0 and report.batches == 0
    assert tasks.drain_recipient.run(registry.licensor.pk)["busy"] is True
    assert requeued == []  # a busy drain does not queue itself again either
    assert licensor_server.received == []
    assert set(
        OutboundMessage.objects.filter(recipient=registry.licensor).values_list(
            "state", "attempt_count", "next_attempt_at"
        )
    ) == {("pending", 0, None)}
    # Other recipients are not held up by it.
    assert not outbox.drain(registry.seller.pk).busy

    other_session.execute("SELECT pg_advisory_unlock(%s, %s)", key)
    report = outbox.drain(registry.licensor.pk)
    assert not report.busy and report.delivered == 3
    # The drain let go of its lock: another session can take it now.
    assert other_session.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]


def test_file_lock_fallback_for_sqlite(settings, tmp_path):
    settings.HUB_DATA_DIR = tmp_path
    with _file_lock(7) as first:
        assert first
        with _file_lock(7) as second, _file_lock(8) as other:
            assert not second and other
    with _file_lock(7) as again:
        assert again


def test_outbound_work_has_its_own_queue_and_the_default_worker_consumes_all():
    route = app.amqp.router.route
    assert route({}, "entitlements.tasks.drain_recipient")["queue"].name == "outbound"
    assert route({}, "entitlements.tasks.resolve_enrollments")["queue"].name == "outbound"
    assert route({}, "confirmations.tasks.apply_pending")["queue"].name == "celery"
    assert route({}, "entitlements.tasks.sweep_outbound")["queue"].name == "celery"
    # A worker started without -Q consumes every declared queue.
    assert set(app.amqp.queues) == {"celery", "outbound"}


def test_a_drain_wake_up_lands_on_the_outbound_queue():
    r = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    before = (r.llen("outbound"), r.llen("celery"))
    enqueue_quietly("entitlements.tasks.drain_recipient", [(2**30,)])
    try:
        assert (r.llen("outbound"), r.llen("celery")) == (before[0] + 1, before[1])
        body = json.loads(r.lindex("outbound", 0))
        assert body["headers"]["task"] == "entitlements.tasks.drain_recipient"
    finally:
        r.lpop("outbound")


# --- F10: wake-ups with the broker down ------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nothing listens


WAKE_SCRIPT = """
import django, logging
django.setup()
import kombu.utils.functional as functional
sleeps = []
real_sleep = functional.sleep
functional.sleep = lambda s: (sleeps.append(s), real_sleep(s))
import config.celery
from django.db import transaction
from entitlements import outbox
from entitlements.services import enrollment
with transaction.atomic():
    outbox.wake_after_commit([1, 2, 3])
    enrollment.wake_after_commit()
print("RETURNED sleeps=%d" % len(sleeps))
"""


def test_wake_ups_with_the_broker_down_neither_raise_nor_retry(worker_env):
    env = {**worker_env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    done = subprocess.run(
        [sys.executable, "-c", WAKE_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # No reconnect loop, no publish retries: one failed connection attempt per wake-up.
    assert "RETURNED sleeps=0" in done.stdout
    assert done.stderr.count("could not enqueue entitlements.tasks.drain_recipient") == 1
    assert "could not enqueue entitlements.tasks.resolve_enrollments" in done.stderr
