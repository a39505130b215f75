"""Nothing accepted is lost, nothing applied twice: with a Redis of the test's own that is
stopped while confirmations arrive, and with a worker SIGKILLed in the middle of a batch.

The web side is a real gunicorn process and the workers real Celery processes, all pointed
at that Redis; the periodic sweep (Celery beat inside the worker) re-wakes the workers."""

from __future__ import annotations

import httpx
import pytest

from confirmations.models import Confirmation
from entitlements.models import StatusEvent
from tests.support.confirm_helpers import licensor_body, portal_body, request_to
from tests.support.factories import make_order
from tests.support.processes import HubServer, sweeping_worker, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def web(worker_env, own_redis, tmp_path):
    """gunicorn serving the hub on a free port, with the test's own Redis as broker."""
    server = HubServer({**worker_env, "CELERY_BROKER_URL": own_redis.url}, tmp_path).start()
    yield server.url
    server.stop()


def confirmations_for(registry, n_entitlements: int):
    """Licensor 'entitled' and portal 'processed' for each entitlement: one change each."""
    order = make_order(registry, n_entitlements)
    out = []
    for e in order.entitlements.order_by("id"):
        out.append(("noord-lr", licensor_body(request_to(e, registry.licensor))))
        out.append(("zuid-portal", portal_body(request_to(e, registry.portal))))
    return out


def put_all(base_url, make_token, items):
    tokens = {cid: make_token(cid) for cid in {cid for cid, _ in items}}
    with httpx.Client(base_url=base_url, timeout=20) as http:
        for cid, body in items:
            response = http.put(
                "/entitlements/confirmations",
                json=body,
                headers={"Authorization": f"Bearer {tokens[cid]}"},
            )
            assert response.status_code == 202, response.text


def assert_each_applied_exactly_once(items):
    rows = Confirmation.objects.all()
    assert rows.count() == len(items)
    assert set(rows.values_list("state", flat=True)) == {"applied"}
    causes = list(StatusEvent.objects.values_list("cause_pk", flat=True))
    assert len(causes) == len(items)  # one change per confirmation, none applied twice
    assert sorted(causes) == sorted(rows.values_list("pk", flat=True))


def test_confirmations_accepted_while_redis_is_down_are_applied_once_it_is_back(
    registry, make_token, own_redis, web, celery_worker_process, tmp_path
):
    worker = sweeping_worker(celery_worker_process, own_redis, tmp_path)
    items = confirmations_for(registry, 6)
    own_redis.down()

    put_all(web, make_token, items)  # every one answered 202 with Redis gone
    assert Confirmation.objects.filter(state="pending").count() == len(items)

    own_redis.up()
    wait_for(
        lambda: not Confirmation.objects.filter(state="pending").exists(),
        timeout=90,
        interval=0.5,
        what="all applied after Redis returned",
    )
    assert_each_applied_exactly_once(items)
    assert "confirmations.tasks.sweep_pending" in worker.output()


def test_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
    registry, make_token, own_redis, web, celery_worker_process, tmp_path
):
    items = confirmations_for(registry, 10)
    put_all(web, make_token, items)  # no worker yet: the wake-up waits in Redis
    slow = celery_worker_process(
        env={
            "CELERY_BROKER_URL": own_redis.url,
            "HUB_APPLY_BATCH_SIZE": "8",
            "HUB_APPLY_BATCH_DELAY": "30",
        }
    )
    wait_for(lambda: "claimed 8 confirmations" in slow.output(), timeout=30, what="a batch")
    slow.kill()  # SIGKILL in the middle of the batch: its transaction never commits
    assert Confirmation.objects.filter(state="pending").count() == len(items)

    sweeping_worker(celery_worker_process, own_redis, tmp_path)
    wait_for(
        lambda: not Confirmation.objects.filter(state="pending").exists(),
        timeout=90,
        interval=0.5,
        what="all applied by the second worker",
    )
    assert_each_applied_exactly_once(items)
