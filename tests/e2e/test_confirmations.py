"""End to end on the real Redis and PostgreSQL with a real Celery worker process:
PUT -> 202 -> woken worker applies it -> visible in the entitlement rows and the outcome GET."""

import pytest
import redis
from django.conf import settings

from confirmations.services.wake import WAKE_KEY
from entitlements.statuses import DeliveryType
from tests.support.confirm_helpers import activation_body, licensor_body, portal_body, request_to
from tests.support.factories import make_order
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def clean_wake():
    # A wake-up key left by another test would make the first request skip its wake-up.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(WAKE_KEY)


def outcome_of(client, receive_id):
    return client.get(f"/entitlements/confirmations/{receive_id}").json()


def test_confirmations_are_applied_by_a_real_worker(
    registry, auth_client, celery_worker_process, clean_wake
):
    worker = celery_worker_process()
    order = make_order(registry, 2)
    first, second = order.entitlements.order_by("id")
    lr, portal = auth_client("noord-lr"), auth_client("zuid-portal")
    bodies = [
        (lr, licensor_body(request_to(first, registry.licensor), "entitled")),
        (lr, licensor_body(request_to(second, registry.licensor), "licensed")),
        (portal, portal_body(request_to(first, registry.portal), "processed")),
    ]
    for client, body in bodies:
        assert client.put("/entitlements/confirmations", body, format="json").status_code == 202

    for client, body in bodies:
        rid = body["entitlementReceiveId"]
        wait_for(
            lambda c=client, r=rid: outcome_of(c, r)["state"] == "applied",
            timeout=30,
            what=f"{rid} applied",
        )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("entitled", "licensed")
    assert first.url_statuses.get().status == "processed"
    assert second.url_statuses.get().status == "uninitialized"
    assert "confirmations.tasks.apply_pending" in worker.output()


def test_activation_is_applied_by_a_real_worker(
    registry, auth_client, celery_worker_process, clean_wake
):
    celery_worker_process()
    order = make_order(registry, 1, delivery_type=DeliveryType.CUSTOMER_ACTIVATIONCODE)
    code = order.entitlements.get()
    body = activation_body(code, user={"userIds": [{"userId": "s-42", "userIdType": "eduID"}]})
    client = auth_client("noord-lr")
    assert client.put("/usage/activation", body, format="json").status_code == 202
    rid = body["initialActivationReferenceId"]
    wait_for(lambda: outcome_of(client, rid)["state"] == "applied", timeout=30, what="applied")
    code.refresh_from_db()
    assert code.status == "licensed"
    assert code.user_ids == [{"userId": "s-42", "userIdType": "eduID"}]
