"""Two workers on one backlog: a worker skips the entitlements another holds (their
confirmations stay pending for a later batch) instead of queueing behind it, and waits only
when it holds none of its batch's entitlements."""

from __future__ import annotations

import threading

from django.db import connection, transaction

from confirmations.models import Confirmation
from confirmations.services.apply import apply_pending_batch
from entitlements.models import Entitlement
from tests.confirmations.test_apply_locks import _lock_waiters
from tests.support.confirm_helpers import licensor_body, request_to, store
from tests.support.factories import make_order
from tests.support.processes import wait_for


def _holding(entitlement_pk: int):
    """Hold ``entitlement_pk`` as another worker's batch does, in a thread, until released."""
    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Entitlement.objects.select_for_update(no_key=True).filter(
                    pk=entitlement_pk
                ).exists()
                held.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    return thread, release


def _state(receive_id: str) -> str:
    return Confirmation.objects.get(receive_id=receive_id).state


def test_a_held_entitlement_is_deferred_not_waited_for(transactional_db, registry):
    order = make_order(registry, 2)
    busy, free = order.entitlements.order_by("id")
    for e, rid in ((busy, "busy"), (free, "free")):
        store(registry.licensor, licensor_body(request_to(e, registry.licensor), receive_id=rid))
    thread, release = _holding(busy.pk)
    try:
        result = apply_pending_batch()
    finally:
        release.set()
        thread.join(30)
    assert (result.claimed, result.deferred, result.full) == (1, 1, False)
    assert (_state("free"), _state("busy")) == ("applied", "pending")
    assert apply_pending_batch().claimed == 1  # the next batch takes it
    assert _state("busy") == "applied"


def test_a_batch_whose_every_entitlement_is_held_waits(transactional_db, registry):
    order = make_order(registry, 1)
    entitlement = order.entitlements.get()
    store(
        registry.licensor, licensor_body(request_to(entitlement, registry.licensor), receive_id="r")
    )
    thread, release = _holding(entitlement.pk)
    results = []

    def work():
        try:
            results.append(apply_pending_batch())
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    wait_for(lambda: _lock_waiters() >= 1, what="the worker to wait for the entitlement")
    release.set()
    thread.join(30)
    worker.join(30)
    assert [r.claimed for r in results] == [1]
    assert _state("r") == "applied"
