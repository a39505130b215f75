"""The worker's replay and a delivery recorded at the same moment: the replay locks
the URL statuses it reads, so it either sees the delivery's result or the delivery sees its
own; never two changes from the same ``uninitialized``."""

from __future__ import annotations

import datetime as dt
import threading

from django.db import connection, transaction
from django.utils import timezone

from confirmations.models import Confirmation
from confirmations.services.apply import apply_all_pending
from entitlements import outbox
from entitlements.models import EntitlementUrlStatus, OutboundMessage, StatusEvent
from entitlements.outbox import mark_initialized
from entitlements.services.expiry import expire_due
from entitlements.statuses import MessageState
from tests.support.confirm_helpers import T0, portal_body, request_to, store
from tests.support.factories import make_order
from tests.support.loopback import Answer, point_party_at
from tests.support.processes import wait_for


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _while_delivery_in_flight(request: OutboundMessage, work) -> None:
    """Record the delivery of ``request`` as ``record_results`` does, in a transaction held
    open until ``work`` (in another thread) waits for a row lock; then commit both. Fails
    the test on any error of either (a deadlock among them)."""
    recorded, release = threading.Event(), threading.Event()
    errors: list[str] = []

    def run(fn):
        try:
            fn()
        except Exception as exc:  # surfaced in the test thread below
            errors.append(str(exc))
        finally:
            connection.close()

    def deliver():
        with transaction.atomic():
            OutboundMessage.objects.filter(pk=request.pk).update(state=MessageState.DELIVERED)
            mark_initialized([request], timezone.now())
            recorded.set()
            release.wait(30)

    delivery = threading.Thread(target=run, args=(deliver,))
    delivery.start()
    assert recorded.wait(30)
    worker = threading.Thread(target=run, args=(work,))
    worker.start()
    # The worker now waits for the URL status row the delivery holds (with the lock: at
    # its SELECT ... FOR UPDATE; without it, only at its UPDATE, after reading the old row).
    wait_for(lambda: _lock_waiters() >= 1, what="the worker to wait for the row lock")
    release.set()
    delivery.join(30)
    worker.join(30)
    assert not errors


def test_replay_waits_for_a_delivery_in_flight_and_folds_from_its_result(
    transactional_db, registry
):
    order = make_order(registry, 1)
    entitlement = order.entitlements.get()
    request = request_to(entitlement, registry.portal)  # not delivered yet
    store(registry.portal, portal_body(request, "processed", at=T0, receive_id="p1"))

    _while_delivery_in_flight(request, apply_all_pending)

    url = EntitlementUrlStatus.objects.get(entitlement=entitlement, portal=registry.portal)
    assert (url.status, url.status_changed_at) == ("processed", T0)
    events = StatusEvent.objects.filter(portal=registry.portal).order_by("id")
    assert list(events.values_list("from_status", "to_status", "cause")) == [
        ("uninitialized", "initialized", "delivery"),
        ("initialized", "processed", "confirmation"),
    ]
    assert Confirmation.objects.get(receive_id="p1").state == "applied"


def test_expiry_job_waits_for_a_delivery_in_flight_without_deadlock(transactional_db, registry):
    order = make_order(registry, 1)
    order.expiration_date = dt.date(2026, 9, 30)
    order.save()
    entitlement = order.entitlements.get()
    request = request_to(entitlement, registry.portal)

    _while_delivery_in_flight(request, expire_due)

    entitlement.refresh_from_db()
    assert entitlement.status == "expired"
    events = StatusEvent.objects.filter(portal=registry.portal).order_by("id")
    assert list(events.values_list("from_status", "to_status", "cause")) == [
        ("uninitialized", "initialized", "delivery"),
        ("initialized", "expired", "expiry"),
    ]


def test_delivery_recorded_while_a_replay_holds_the_url_status_without_deadlock(
    transactional_db, registry, party_server
):
    """The other order: the replay holds the URL status first and, at its commit, checks
    the foreign key of the confirmation it linked to the request (``FOR KEY SHARE`` on the
    message row), while the drain records the delivery of that request (the message rows
    locked, then the URL status). The drain's lock on its messages must not conflict with
    that check, or the two deadlock and the drain's batch stays leased."""
    point_party_at(registry.portal, party_server(lambda r: Answer(200)))
    order = make_order(registry, 1)
    entitlement = order.entitlements.get()
    request = request_to(entitlement, registry.portal)
    store(registry.portal, portal_body(request, "processed", at=T0, receive_id="p1"))
    confirmation = Confirmation.objects.get(receive_id="p1")
    claim = outbox.claim_due(registry.portal.pk)
    assert claim.ids == [request.pk]

    holding, release = threading.Event(), threading.Event()
    errors: list[str] = []
    reports = []

    def replay():
        with transaction.atomic():
            list(
                EntitlementUrlStatus.objects.filter(entitlement=entitlement)
                .select_for_update()
                .values_list("id")
            )
            # Checked at commit (Django's foreign keys are deferred): FOR KEY SHARE on the
            # request's row, which the drain holds by then.
            Confirmation.objects.filter(pk=confirmation.pk).update(message=request.pk)
            holding.set()
            release.wait(30)

    def drain():
        assert holding.wait(30)
        reports.append(outbox.send_batch(claim))

    def run(fn, name):
        try:
            fn()
        except Exception as exc:  # surfaced in the test thread below
            errors.append(f"{name}: {exc}")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(replay, "replay")),
        threading.Thread(target=run, args=(drain, "drain")),
    ]
    for thread in threads:
        thread.start()
    wait_for(lambda: _lock_waiters() >= 1, what="the drain to wait for the URL status row")
    release.set()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert reports[0].delivered == 1
    assert OutboundMessage.objects.get(pk=request.pk).state == MessageState.DELIVERED
    url = EntitlementUrlStatus.objects.get(entitlement=entitlement, portal=registry.portal)
    assert url.status == "initialized"
