"""Outbound delivery against real HTTP servers on loopback (docs/delivery.md, "Outbound
messages")."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aanspraak.outbound.policy import AttemptOutcome, RetryPolicy, classify, parse_retry_after
from entitlements import outbox
from entitlements.models import DeliveryAttempt, EntitlementUrlStatus, OutboundMessage, StatusEvent
from entitlements.services.resend import resend_messages
from tests.support.factories import make_order
from tests.support.loopback import Answer, LoopbackParty, point_party_at


def point(party, server: LoopbackParty, *, token: bool = False) -> None:
    point_party_at(party, server, client=("hub", "hub-secret") if token else None)


def test_classification():
    assert classify(200) is AttemptOutcome.DELIVERED and classify(204) is AttemptOutcome.DELIVERED
    assert classify(None) is AttemptOutcome.RETRY
    assert classify(500) is AttemptOutcome.RETRY and classify(503) is AttemptOutcome.RETRY
    assert classify(429) is AttemptOutcome.RETRY
    assert classify(400) is AttemptOutcome.FAILED and classify(404) is AttemptOutcome.FAILED
    assert classify(409) is AttemptOutcome.FAILED


def test_backoff_is_exponential_with_full_jitter_and_honours_retry_after():
    policy = RetryPolicy(base_seconds=2, max_delay_seconds=60, horizon_seconds=1000)
    rng = random.Random(7)
    delays = [policy.delay(n, rng=rng) for n in range(1, 8) for _ in range(50)]
    assert all(0 <= d <= 60 for d in delays)
    for n in range(1, 8):
        ceiling = min(60, 2 * 2 ** (n - 1))
        sample = [policy.delay(n, rng=rng) for _ in range(200)]
        assert max(sample) <= ceiling
        assert max(sample) > ceiling * 0.8  # the jitter spans the whole range
    assert policy.delay(1, retry_after=120, rng=rng) >= 120
    now = timezone.now()
    assert policy.next_attempt_at(now, 1, now, retry_after=2000) is None  # past the horizon
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT") > 1e6
    assert parse_retry_after("soon") is None


def test_request_bodies_to_licensor_and_portal(registry, party_server):
    server = party_server()
    point(registry.licensor, server)
    point(registry.portal, server)
    order = make_order(registry, 1, delivery_type="school-activationcodes")
    entitlement = order.entitlements.get()
    outbox.drain(registry.licensor.pk)
    outbox.drain(registry.portal.pk)
    to_licensor = OutboundMessage.objects.get(recipient=registry.licensor)
    to_portal = OutboundMessage.objects.get(recipient=registry.portal)
    bodies = {b["entitlementReferenceId"]: b for b in server.bodies()}
    assert set(bodies) == {str(to_licensor.reference_id), str(to_portal.reference_id)}
    licensor_body = bodies[str(to_licensor.reference_id)]["entitlement"]
    assert licensor_body["entitlementId"] == str(entitlement.entitlement_id)
    assert licensor_body["deliveryOrderId"] == order.delivery_order_id
    assert licensor_body["contractId"] == "C-1"
    assert licensor_body["productId"] == "9789001000011"
    assert licensor_body["startDate"] == "2026-08-01"
    assert licensor_body["activationUntilDate"] == "2026-10-01"
    assert licensor_body["expirationDate"] == "2027-07-31"
    assert licensor_body["entitlementType"] == "school-activationcode"
    assert licensor_body["entitlementStatus"] == "created"
    assert (
        licensor_body["entitlementSpecification"]["activationCode"] == entitlement.activation_code
    )
    assert licensor_body["urlStatuses"] == [{"portal": "portal-zuid", "urlStatus": "uninitialized"}]
    assert licensor_body["dateCreated"].endswith("Z")
    portal_body = bodies[str(to_portal.reference_id)]["entitlement"]
    assert portal_body["urlStatuses"] == [{"portal": "portal-zuid", "urlStatus": "initialized"}]
    # Activation codes are shown only to the seller and the licensor.
    assert "activationCode" not in portal_body["entitlementSpecification"]
    assert all(r.method == "PUT" and r.path == "/entitlements" for r in server.received)
    to_licensor.refresh_from_db()
    assert to_licensor.body["entitlement"]["entitlementId"] == str(entitlement.entitlement_id)


def test_delivered_requests_are_recorded_and_portal_url_status_initialized(registry, party_server):
    server = party_server()
    point(registry.licensor, server)
    point(registry.portal, server)
    make_order(registry, 5)
    report = outbox.drain(registry.portal.pk)
    assert report.delivered == 5
    messages = OutboundMessage.objects.filter(recipient=registry.portal)
    assert {(m.state, m.attempt_count) for m in messages} == {("delivered", 1)}
    assert all(m.delivered_at is not None and m.next_attempt_at is None for m in messages)
    attempts = DeliveryAttempt.objects.filter(message__recipient=registry.portal)
    assert attempts.count() == 5
    assert {(a.http_status, a.outcome) for a in attempts} == {(200, "delivered")}
    assert {u.status for u in EntitlementUrlStatus.objects.all()} == {"initialized"}
    events = StatusEvent.objects.filter(cause="delivery")
    assert events.count() == 5
    assert {(e.from_status, e.to_status, e.portal_id) for e in events} == {
        ("uninitialized", "initialized", registry.portal.pk)
    }
    # The licensor's messages were not touched by the portal's drain.
    assert set(
        OutboundMessage.objects.filter(recipient=registry.licensor).values_list("state", flat=True)
    ) == {"pending"}
    outbox.drain(registry.licensor.pk)
    assert StatusEvent.objects.filter(cause="delivery").count() == 5  # no URL change by licensor


def test_url_status_moved_on_by_a_confirmation_is_not_set_back(registry, party_server):
    server = party_server()
    point(registry.portal, server)
    make_order(registry, 2)
    EntitlementUrlStatus.objects.update(status="processed")
    outbox.drain(registry.portal.pk)
    assert {u.status for u in EntitlementUrlStatus.objects.all()} == {"processed"}
    assert not StatusEvent.objects.filter(cause="delivery").exists()


def test_503_is_retried_later(registry, party_server, settings):
    settings.HUB_RETRY_BASE_SECONDS = 60
    server = party_server(lambda r: Answer(503, {"status": 99, "statusMessage": "busy"}))
    point(registry.licensor, server)
    make_order(registry, 2)
    before = timezone.now()
    report = outbox.drain(registry.licensor.pk)
    assert report.retry == 2 and report.batches == 1
    for m in OutboundMessage.objects.filter(recipient=registry.licensor):
        assert m.state == "pending" and m.attempt_count == 1
        assert before <= m.next_attempt_at <= timezone.now() + dt.timedelta(seconds=61)
        assert "HTTP 503" in m.last_error
    assert {(a.http_status, a.outcome) for a in DeliveryAttempt.objects.all()} == {(503, "retry")}
    # Not due yet: a second drain sends nothing.
    assert outbox.drain(registry.licensor.pk).total == 0
    assert len(server.received) == 2


def test_a_drain_tries_each_message_once_however_short_the_backoff(
    registry, party_server, settings
):
    # A wait of zero makes every failed message due again at once; the drain still takes
    # only what was due when it started, and asks to be run again (``more``).
    settings.HUB_RETRY_BASE_SECONDS = 0
    settings.HUB_OUTBOUND_BATCH_SIZE = 2
    server = party_server(lambda r: Answer(503))
    point(registry.licensor, server)
    make_order(registry, 5)
    report = outbox.drain(registry.licensor.pk, time_budget=30)
    assert (report.retry, report.batches, report.more) == (5, 3, True)
    assert len(server.received) == 5
    attempts = OutboundMessage.objects.filter(recipient=registry.licensor)
    assert set(attempts.values_list("attempt_count", flat=True)) == {1}
    # The next drain takes them again.
    assert outbox.drain(registry.licensor.pk, time_budget=30).retry == 5


def test_429_honours_retry_after(registry, party_server):
    server = party_server(lambda r: Answer(429, headers={"Retry-After": "600"}))
    point(registry.licensor, server)
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    m = OutboundMessage.objects.get(recipient=registry.licensor)
    assert m.state == "pending"
    assert m.next_attempt_at >= timezone.now() + dt.timedelta(seconds=590)
    assert DeliveryAttempt.objects.get().outcome == "retry"


def test_other_4xx_fails_for_good(registry, party_server):
    server = party_server(lambda r: Answer(400, {"status": 11, "statusMessage": "bad"}))
    point(registry.licensor, server)
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    m = OutboundMessage.objects.get(recipient=registry.licensor)
    assert m.state == "failed" and m.next_attempt_at is None
    assert "HTTP 400" in m.last_error and "bad" in m.last_error
    assert DeliveryAttempt.objects.get().outcome == "failed"


def test_connection_error_and_timeout_are_retried(registry, party_server, settings):
    settings.HUB_OUTBOUND_TIMEOUT = 0.3
    slow = party_server(lambda r: Answer(200, delay=2))
    point(registry.licensor, slow)
    registry.portal.endpoint_base_url = "http://127.0.0.1:9"  # nothing listens there
    registry.portal.save()
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    outbox.drain(registry.portal.pk)
    to_licensor = OutboundMessage.objects.get(recipient=registry.licensor)
    to_portal = OutboundMessage.objects.get(recipient=registry.portal)
    assert to_licensor.state == "pending" and "timeout" in to_licensor.last_error
    assert to_portal.state == "pending" and "connection error" in to_portal.last_error
    assert {a.http_status for a in DeliveryAttempt.objects.all()} == {None}
    assert {a.outcome for a in DeliveryAttempt.objects.all()} == {"retry"}


def test_gives_up_after_the_horizon(registry, party_server, settings):
    settings.HUB_RETRY_HORIZON_SECONDS = 0
    server = party_server(lambda r: Answer(503))
    point(registry.licensor, server)
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    m = OutboundMessage.objects.get(recipient=registry.licensor)
    assert m.state == "failed" and m.last_error.startswith("gave up after 1 attempts")
    assert DeliveryAttempt.objects.get().outcome == "failed"


def test_recipient_without_endpoint_fails_with_a_clear_error(registry):
    registry.licensor.endpoint_base_url = ""
    registry.licensor.save()
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    m = OutboundMessage.objects.get(recipient=registry.licensor)
    assert m.state == "failed" and "no endpoint baseUrl" in m.last_error


def test_with_30_percent_failing_everything_is_delivered_in_the_end(
    registry, party_server, settings
):
    settings.HUB_RETRY_BASE_SECONDS = 0.001
    settings.HUB_RETRY_MAX_DELAY_SECONDS = 0.001
    settings.HUB_OUTBOUND_BATCH_SIZE = 25
    rng = random.Random(30)
    rng_lock = threading.Lock()

    def flaky(received):
        with rng_lock:
            failing = rng.random() < 0.3
        return Answer(503) if failing else Answer(200)

    server = party_server(flaky)
    point(registry.licensor, server)
    point(registry.portal, server)
    make_order(registry, 60)
    for _ in range(50):
        for party in (registry.licensor, registry.portal):
            outbox.drain(party.pk)
        if not OutboundMessage.objects.filter(state="pending").exists():
            break
    messages = OutboundMessage.objects.all()
    assert messages.count() == 120
    assert set(messages.values_list("state", flat=True)) == {"delivered"}
    attempts = DeliveryAttempt.objects.all()
    # Every attempt recorded: as many as the server received, some of them retries.
    assert attempts.count() == len(server.received)
    failures = attempts.filter(outcome="retry").count()
    assert failures > 10
    assert attempts.filter(outcome="delivered").count() == 120
    for m in messages:
        assert m.attempt_count == m.attempts.count()
    delivered_refs = {b["entitlementReferenceId"] for b in server.bodies()}
    assert delivered_refs == {str(r) for r in messages.values_list("reference_id", flat=True)}
    assert {u.status for u in EntitlementUrlStatus.objects.all()} == {"initialized"}
    assert StatusEvent.objects.filter(cause="delivery").count() == 60


def test_a_batch_is_sent_concurrently(registry, party_server, settings):
    settings.HUB_OUTBOUND_CONCURRENCY = 8
    server = party_server(lambda r: Answer(200, delay=0.3))
    point(registry.licensor, server)
    make_order(registry, 8)
    assert outbox.drain(registry.licensor.pk).delivered == 8
    assert server.max_in_flight > 1


def test_claims_do_not_overlap(registry):
    make_order(registry, 4)
    first = outbox.claim_due(registry.licensor.pk, limit=3)
    second = outbox.claim_due(registry.licensor.pk, limit=3)
    assert len(first) == 3 and len(second) == 1
    assert not set(first.ids) & set(second.ids)
    assert outbox.claim_due(registry.licensor.pk).ids == []  # all leased
    assert outbox.due_recipients() == [registry.portal.pk]


def test_queries_per_batch_do_not_grow_with_the_batch(registry, party_server):
    server = party_server()
    point(registry.licensor, server)
    point(registry.portal, server)
    make_order(registry, 3, delivery_order_id="DO-small")
    small = outbox.claim_due(registry.portal.pk)
    with CaptureQueriesContext(connection) as ctx_small:
        outbox.send_batch(small)
    make_order(registry, 30, delivery_order_id="DO-large")
    large = outbox.claim_due(registry.portal.pk)
    assert len(large) == 30
    with CaptureQueriesContext(connection) as ctx_large:
        outbox.send_batch(large)
    assert len(ctx_small.captured_queries) == len(ctx_large.captured_queries)


def test_token_is_fetched_once_and_cached(registry, party_server):
    server = party_server()
    server.require_token = True
    point(registry.licensor, server, token=True)
    make_order(registry, 10)
    outbox.drain(registry.licensor.pk)
    assert len(server.token_requests) == 1
    assert server.basic_credentials(server.token_requests[0]) == ("hub", "hub-secret")
    assert "grant_type=client_credentials" in server.token_requests[0].body["_form"]
    assert set(
        OutboundMessage.objects.filter(recipient=registry.licensor).values_list("state", flat=True)
    ) == {"delivered"}
    auths = {r.headers["Authorization"] for r in server.received}
    assert len(auths) == 1 and next(iter(auths)).startswith("Bearer ")
    # A second drain reuses the cached token.
    make_order(registry, 3)
    outbox.drain(registry.licensor.pk)
    assert len(server.token_requests) == 1
    assert len(server.received) == 13


def test_expired_token_is_fetched_again(registry, party_server):
    server = party_server()
    server.require_token = True
    server.token_lifetime = 1  # within the leeway: expired at once
    point(registry.licensor, server, token=True)
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    assert len(server.token_requests) == 2
    assert set(
        OutboundMessage.objects.filter(recipient=registry.licensor).values_list("state", flat=True)
    ) == {"delivered"}


def test_refused_token_is_dropped_and_the_message_retried(registry, party_server, settings):
    settings.HUB_RETRY_BASE_SECONDS = 60
    server = party_server()
    server.require_token = True
    point(registry.licensor, server, token=True)
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    server.tokens.clear()  # the party revokes every token it gave out
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    latest = OutboundMessage.objects.filter(recipient=registry.licensor).latest("id")
    assert latest.state == "pending" and "HTTP 401" in latest.last_error
    OutboundMessage.objects.filter(pk=latest.pk).update(next_attempt_at=timezone.now())
    outbox.drain(registry.licensor.pk)
    latest.refresh_from_db()
    assert latest.state == "delivered"
    assert len(server.token_requests) == 2


def test_token_endpoint_down_is_retried_and_the_secret_is_not_in_the_error(registry, settings):
    registry.licensor.endpoint_base_url = "http://127.0.0.1:9"
    registry.licensor.endpoint_token_url = "http://127.0.0.1:9/oauth2/token"
    registry.licensor.endpoint_client_id = "hub"
    registry.licensor.endpoint_client_secret = "very-secret-value"
    registry.licensor.save()
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    m = OutboundMessage.objects.get(recipient=registry.licensor)
    assert m.state == "pending" and "token request" in m.last_error
    assert "very-secret-value" not in m.last_error
    assert "very-secret-value" not in DeliveryAttempt.objects.get().error


def test_resend_puts_failed_messages_back_in_the_queue(
    registry, party_server, woken_drains, django_capture_on_commit_callbacks
):
    woken = woken_drains
    answers = iter([Answer(400), Answer(200)])
    server = party_server(lambda r: next(answers))
    point(registry.licensor, server)
    make_order(registry, 1)
    outbox.drain(registry.licensor.pk)
    message = OutboundMessage.objects.get(recipient=registry.licensor)
    assert message.state == "failed"
    with django_capture_on_commit_callbacks(execute=True):
        assert resend_messages(OutboundMessage.objects.filter(pk=message.pk)) == 1
    assert woken == [registry.licensor.pk]
    message.refresh_from_db()
    assert message.state == "pending" and message.next_attempt_at <= timezone.now()
    outbox.drain(registry.licensor.pk)
    message.refresh_from_db()
    # The re-send starts a fresh count; the attempt history is kept.
    assert message.state == "delivered" and message.attempt_count == 1
    assert [a.outcome for a in message.attempts.order_by("id")] == ["failed", "delivered"]


def test_claim_takes_due_retries_first_then_never_tried_and_skips_the_rest(registry):
    make_order(registry, 6)
    ids = list(
        OutboundMessage.objects.filter(recipient=registry.licensor)
        .order_by("id")
        .values_list("id", flat=True)
    )
    now = timezone.now()
    # ids[0], ids[1]: due retries (the later-due one first in id order); ids[2]: backed off
    # into the future; ids[3..5]: never tried (next_attempt_at null).
    OutboundMessage.objects.filter(id=ids[0]).update(next_attempt_at=now - dt.timedelta(seconds=5))
    OutboundMessage.objects.filter(id=ids[1]).update(next_attempt_at=now - dt.timedelta(seconds=60))
    OutboundMessage.objects.filter(id=ids[2]).update(next_attempt_at=now + dt.timedelta(hours=1))
    first = outbox.claim_due(registry.licensor.pk, limit=3)
    assert first.ids == [ids[1], ids[0], ids[3]]
    second = outbox.claim_due(registry.licensor.pk, limit=3)
    assert second.ids == [ids[4], ids[5]]
    assert outbox.claim_due(registry.licensor.pk).ids == []
    assert set(
        OutboundMessage.objects.filter(id__in=first.ids).values_list("next_attempt_at", flat=True)
    ) == {first.lease}


def test_a_drain_keeps_the_window_full_across_batches(registry, party_server, settings):
    """The next batch is queued before the one in flight is recorded: while one request of
    the first batch is slow, the second batch's requests go out (no barrier per batch)."""
    settings.HUB_OUTBOUND_CONCURRENCY = 4
    settings.HUB_OUTBOUND_BATCH_SIZE = 4
    make_order(registry, 12)
    position = {
        str(ref): i
        for i, ref in enumerate(
            OutboundMessage.objects.filter(recipient=registry.licensor)
            .order_by("id")
            .values_list("reference_id", flat=True)
        )
    }
    arrivals: dict[int, float] = {}
    lock = threading.Lock()

    def first_batch_slow(received):
        i = position[received.body["entitlementReferenceId"]]
        with lock:
            arrivals[i] = time.monotonic()
        return Answer(200, delay=1.5 if i == 3 else 0)

    server = party_server(first_batch_slow)
    point(registry.licensor, server)
    report = outbox.drain(registry.licensor.pk)
    assert report.delivered == 12 and report.batches == 3
    # The second batch (positions 4 to 7) went out while the slow request was still open.
    slow_done = arrivals[3] + 1.5
    assert min(arrivals[i] for i in range(4, 8)) < slow_done - 0.5
    assert DeliveryAttempt.objects.filter(message__recipient=registry.licensor).count() == 12


def test_a_batch_whose_token_cannot_be_had_is_not_sent(registry, party_server, settings):
    """One token request per batch: when it fails, the batch's messages get that failed
    attempt without being sent (not one doomed token request per message)."""
    settings.HUB_RETRY_BASE_SECONDS = 60
    server = party_server(lambda r: Answer(503 if r.path == "/broken-token" else 200))
    point(registry.licensor, server)
    registry.licensor.endpoint_token_url = server.base_url + "/broken-token"
    registry.licensor.endpoint_client_id = "hub"
    registry.licensor.endpoint_client_secret = "hub-secret"
    registry.licensor.save()
    make_order(registry, 5)
    report = outbox.drain(registry.licensor.pk)
    assert report.retry == 5 and report.batches == 1
    assert [r.path for r in server.received] == ["/broken-token"]
    attempts = DeliveryAttempt.objects.filter(message__recipient=registry.licensor)
    assert attempts.count() == 5
    assert {(a.http_status, a.outcome) for a in attempts} == {(None, "retry")}
    assert all("token request" in a.error for a in attempts)
    assert "hub-secret" not in attempts[0].error
    assert set(
        OutboundMessage.objects.filter(recipient=registry.licensor).values_list(
            "state", "attempt_count"
        )
    ) == {("pending", 1)}
