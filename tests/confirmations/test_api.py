"""The request path of PUT /entitlements/confirmations, GET /entitlements/confirmations/{id}
and PUT /usage/activation: strict validation, who may confirm what, one durable INSERT,
idempotency by receive id, a wake-up after commit that never fails the request."""

import copy
import socket
import time

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from confirmations.models import Confirmation, ConfirmationKind
from confirmations.services.apply import apply_all_pending
from confirmations.services.wake import WAKE_KEY, wait_for_wakes
from tests.support.confirm_helpers import (
    activation_body,
    licensor_body,
    portal_body,
    request_to,
)
from tests.support.factories import make_order

URL = "/entitlements/confirmations"
pytestmark = pytest.mark.django_db


@pytest.fixture
def order(registry):
    return make_order(registry, 2)


@pytest.fixture
def entitlement(order):
    return order.entitlements.order_by("id").first()


@pytest.fixture
def lr_body(registry, entitlement):
    return licensor_body(request_to(entitlement, registry.licensor))


def put(client, body, url=URL):
    return client.put(url, body, format="json")


def test_licensor_confirmation_is_stored_pending_and_answered_202(registry, auth_client, lr_body):
    response = put(auth_client("noord-lr"), lr_body)
    assert response.status_code == 202, response.content
    row = Confirmation.objects.get()
    assert (row.sender, row.kind, row.state) == (registry.licensor, "confirmation", "pending")
    assert row.receive_id == lr_body["entitlementReceiveId"]
    assert row.reference_id == lr_body["entitlementReferenceId"]
    assert row.entitlement_ref == lr_body["entitlementId"]
    assert row.new_entitlement_status == "entitled" and row.new_url_status is None
    assert row.processed_timestamp.isoformat() == "2026-09-01T08:00:00+00:00"
    assert row.body == lr_body
    assert row.client == registry.clients["noord-lr"]
    assert row.entitlement is None  # no business lookups in the request


def test_request_path_is_a_handful_of_queries_and_does_no_lookups(auth_client, lr_body):
    client = auth_client("noord-lr")

    def queries_of_one_put(body) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            assert put(client, body).status_code == 202
        return [q["sql"] for q in queries.captured_queries]

    # First use of the token: one query for the token with its client and party (the
    # token cache, docs/api.md#authentication), then the INSERT; no transaction around it.
    cold = queries_of_one_put(lr_body)
    assert len(cold) == 2, cold
    assert "oauth2_provider_accesstoken" in cold[0] and "aanspraak_party" in cold[0]
    # Then the token is cached: the INSERT is the request's only query (it was 3 before the
    # cache: token, party, INSERT).
    warm = queries_of_one_put({**lr_body, "entitlementReceiveId": "second"})
    assert len(warm) == 1, warm
    for sql in (cold, warm):
        assert sum("INSERT" in s for s in sql) == 1
        assert "ON CONFLICT DO NOTHING" in sql[-1]
        assert not any("entitlements_" in s for s in sql)


def test_repeated_receive_id_is_a_no_op_still_202(auth_client, lr_body):
    client = auth_client("noord-lr")
    assert put(client, lr_body).status_code == 202
    again = {**lr_body, "newEntitlementStatus": "licensed"}  # same receive id
    assert put(client, again).status_code == 202
    row = Confirmation.objects.get()
    assert row.new_entitlement_status == "entitled"


def test_same_receive_id_from_another_sender_is_a_separate_confirmation(
    registry, auth_client, entitlement, lr_body
):
    assert put(auth_client("noord-lr"), lr_body).status_code == 202
    pb = portal_body(request_to(entitlement, registry.portal))
    pb["entitlementReceiveId"] = lr_body["entitlementReceiveId"]
    assert put(auth_client("zuid-portal"), pb).status_code == 202
    assert Confirmation.objects.count() == 2


def test_portal_confirms_its_own_url_status(registry, auth_client, entitlement):
    body = portal_body(request_to(entitlement, registry.portal))
    assert put(auth_client("zuid-portal"), body).status_code == 202
    row = Confirmation.objects.get()
    assert (row.url_portal, row.new_url_status, row.new_entitlement_status) == (
        "portal-zuid",
        "processed",
        None,
    )


def test_portal_may_leave_out_newUrlStatus_portal(registry, auth_client, entitlement):
    body = portal_body(request_to(entitlement, registry.portal))
    del body["newUrlStatus"]["portal"]
    assert put(auth_client("zuid-portal"), body).status_code == 202
    assert Confirmation.objects.get().url_portal == "portal-zuid"


def test_timestamp_with_offset_is_stored_in_utc(auth_client, lr_body):
    lr_body["processedTimestamp"] = "2026-09-01T10:00:00.250+02:00"
    assert put(auth_client("noord-lr"), lr_body).status_code == 202
    assert Confirmation.objects.get().processed_timestamp.isoformat() == (
        "2026-09-01T08:00:00.250000+00:00"
    )


BAD_BODIES = [
    ("entitlementReferenceId", lambda b: b.pop("entitlementReferenceId")),
    ("entitlementReceiveId", lambda b: b.pop("entitlementReceiveId")),
    ("entitlementId", lambda b: b.pop("entitlementId")),
    ("productId", lambda b: b.pop("productId")),
    ("processedTimestamp", lambda b: b.pop("processedTimestamp")),
    ("processedTimestamp", lambda b: b.update(processedTimestamp="2026-09-01T08:00:00")),
    ("processedTimestamp", lambda b: b.update(processedTimestamp="2026-09-01")),
    ("processedTimestamp", lambda b: b.update(processedTimestamp="2026-13-01T08:00:00Z")),
    ("processedTimestamp", lambda b: b.update(processedTimestamp=1788249600)),
    ("newEntitlementStatus", lambda b: b.update(newEntitlementStatus="expired")),
    ("newEntitlementStatus", lambda b: b.update(newEntitlementStatus="Entitled")),
    ("newEntitlementStatus", lambda b: b.pop("newEntitlementStatus")),
    ("entitlementReceiveId", lambda b: b.update(entitlementReceiveId=12345)),
    ("entitlementReceiveId", lambda b: b.update(entitlementReceiveId="")),
    ("entitlementReceiveId", lambda b: b.update(entitlementReceiveId="x" * 201)),
    ("productid", lambda b: b.update(productid="9789001000011")),
    ("newUrlStatus.urlStatus", lambda b: b.update(newUrlStatus={"portal": "portal-zuid"})),
    (
        "newUrlStatus.urlStatus",
        lambda b: b.update(newUrlStatus={"portal": "portal-zuid", "urlStatus": "uninitialized"}),
    ),
    ("newUrlStatus.extra", lambda b: b.update(newUrlStatus={"urlStatus": "processed", "extra": 1})),
]


@pytest.mark.parametrize(("field", "mutate"), BAD_BODIES, ids=[f for f, _ in BAD_BODIES])
def test_bad_input_is_400_naming_the_field_and_stores_nothing(auth_client, lr_body, field, mutate):
    body = copy.deepcopy(lr_body)
    mutate(body)
    response = put(auth_client("noord-lr"), body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["status"] == 11
    assert field.split(".")[-1] in payload["statusMessage"] or (
        field == "newEntitlementStatus" and "newUrlStatus" in payload["statusMessage"]
    ), payload
    assert not Confirmation.objects.exists()


@pytest.mark.parametrize("body", [[], "text", None, 7])
def test_body_that_is_not_an_object_is_400(auth_client, body):
    response = auth_client("noord-lr").put(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == 11
    assert not Confirmation.objects.exists()


def test_without_token_401(api_client, lr_body):
    response = put(api_client, lr_body)
    assert response.status_code == 401
    assert response.json()["status"] == 99
    assert not Confirmation.objects.exists()


def test_seller_or_dashboard_scope_is_403(auth_client, lr_body):
    for client_id in ("oost-seller", "west-dashboard"):
        response = put(auth_client(client_id), lr_body)
        assert response.status_code == 403
        assert response.json()["status"] == 21
    assert not Confirmation.objects.exists()


def test_portal_may_not_confirm_an_entitlement_status(auth_client, lr_body):
    response = put(auth_client("zuid-portal"), lr_body)
    assert response.status_code == 403
    assert "newEntitlementStatus" in response.json()["statusMessage"]
    assert not Confirmation.objects.exists()


def test_portal_may_not_confirm_another_portal(registry, auth_client, entitlement):
    body = portal_body(request_to(entitlement, registry.portal))
    body["newUrlStatus"]["portal"] = "portal-klei"
    response = put(auth_client("zuid-portal"), body)
    assert response.status_code == 403
    assert "portal-klei" in response.json()["statusMessage"]
    assert not Confirmation.objects.exists()


def test_licensor_may_not_confirm_a_url_status(registry, auth_client, entitlement):
    body = portal_body(request_to(entitlement, registry.portal))
    response = put(auth_client("noord-lr"), body)
    assert response.status_code == 403
    assert "newUrlStatus" in response.json()["statusMessage"]
    assert not Confirmation.objects.exists()


def test_other_methods_are_405_status_responses(auth_client):
    response = auth_client("noord-lr").post(URL, {}, format="json")
    assert response.status_code == 405
    assert response.json()["status"] == 99


# --- GET /entitlements/confirmations/{id} ---------------------------------------------------


def test_outcome_for_the_sender_pending_then_applied(auth_client, lr_body):
    client = auth_client("noord-lr")
    put(client, lr_body)
    url = f"{URL}/{lr_body['entitlementReceiveId']}"
    assert client.get(url).json() == {
        "entitlementReceiveId": lr_body["entitlementReceiveId"],
        "state": "pending",
        "reason": "",
    }
    apply_all_pending()
    answer = client.get(url).json()
    assert answer["state"] == "applied"
    assert "entitled" in answer["reason"]


def test_outcome_is_404_for_anyone_else(auth_client, lr_body):
    put(auth_client("noord-lr"), lr_body)
    url = f"{URL}/{lr_body['entitlementReceiveId']}"
    for other in ("berg-lr", "zuid-portal"):
        response = auth_client(other).get(url)
        assert response.status_code == 404
        assert response.json()["status"] == 99
    missing = auth_client("noord-lr").get(f"{URL}/no-such-id")
    assert missing.status_code == 404
    # the same text for a missing id and someone else's: nothing to tell them apart
    other = auth_client("berg-lr").get(url).json()["statusMessage"]
    assert other.replace(lr_body["entitlementReceiveId"], "X") == missing.json()[
        "statusMessage"
    ].replace("no-such-id", "X")


# --- PUT /usage/activation ------------------------------------------------------------------

ACT_URL = "/usage/activation"


def test_activation_is_stored_as_a_pending_licensed_confirmation(
    registry, auth_client, entitlement
):
    body = activation_body(entitlement)
    assert put(auth_client("noord-lr"), body, ACT_URL).status_code == 202
    row = Confirmation.objects.get()
    assert row.kind == ConfirmationKind.ACTIVATION
    assert row.receive_id == body["initialActivationReferenceId"]
    assert row.new_entitlement_status == "licensed"
    assert row.reference_id == ""
    assert row.body["user"] == body["user"]
    assert put(auth_client("noord-lr"), body, ACT_URL).status_code == 202
    assert Confirmation.objects.count() == 1
    # its outcome is readable by the same GET
    got = auth_client("noord-lr").get(f"{URL}/{body['initialActivationReferenceId']}")
    assert got.json()["state"] == "pending"


def test_activation_needs_the_usage_scope(auth_client, entitlement):
    body = activation_body(entitlement)
    response = put(auth_client("noord-lr", scope="eduv.entitlement.licensor"), body, ACT_URL)
    assert response.status_code == 403
    assert response.json()["status"] == 21
    assert put(auth_client("zuid-portal"), body, ACT_URL).status_code == 403
    assert not Confirmation.objects.exists()


BAD_ACTIVATIONS = [
    ("initialActivationReferenceId", lambda b: b.pop("initialActivationReferenceId")),
    ("entitlementId", lambda b: b.pop("entitlementId")),
    ("productId", lambda b: b.pop("productId")),
    ("entitlementType", lambda b: b.update(entitlementType="school-everyone")),
    ("school", lambda b: b.pop("school")),
    ("school", lambda b: b.update(school={})),
    (
        "organisationIdType",
        lambda b: b.update(
            school={"organisationIds": [{"organisationId": "1", "organisationIdType": "X"}]}
        ),
    ),
    ("user", lambda b: b.pop("user")),
    ("user", lambda b: b.update(user={})),
    ("userIdType", lambda b: b.update(user={"userIds": [{"userId": "u1"}]})),
    ("activationTimestamp", lambda b: b.update(activationTimestamp="yesterday")),
    ("status", lambda b: b.update(status="licensed")),
]


@pytest.mark.parametrize(("field", "mutate"), BAD_ACTIVATIONS, ids=[f for f, _ in BAD_ACTIVATIONS])
def test_bad_activation_is_400_naming_the_field(auth_client, entitlement, field, mutate):
    body = activation_body(entitlement)
    mutate(body)
    response = put(auth_client("noord-lr"), body, ACT_URL)
    assert response.status_code == 400, response.content
    assert response.json()["status"] == 11
    assert field in response.json()["statusMessage"]
    assert not Confirmation.objects.exists()


# --- the wake-up after commit -----------------------------------------------------------------


def test_wake_up_is_sent_after_commit_and_debounced(
    auth_client, lr_body, django_capture_on_commit_callbacks
):
    r = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    r.delete(WAKE_KEY)
    before = r.llen("celery")
    client = auth_client("noord-lr")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert put(client, lr_body).status_code == 202
    assert len(callbacks) == 1
    # the request only pokes this process's waker thread; wait for its run
    assert wait_for_wakes()
    assert r.exists(WAKE_KEY)
    assert r.llen("celery") == before + 1
    # a second confirmation while the wake-up is still queued sends no second message
    with django_capture_on_commit_callbacks(execute=True):
        second = {**lr_body, "entitlementReceiveId": "another"}
        assert put(client, second).status_code == 202
    assert wait_for_wakes()
    assert r.llen("celery") == before + 1
    r.delete(WAKE_KEY)
    r.delete("celery")


def test_broker_down_still_202_and_durable(
    auth_client, lr_body, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert put(auth_client("noord-lr"), lr_body).status_code == 202
    assert len(callbacks) == 1
    assert wait_for_wakes()  # the waker's attempt failed (and was logged) meanwhile
    assert Confirmation.objects.get().state == "pending"


@pytest.fixture
def silent_redis():
    """A TCP server that accepts connections and never answers: a Redis that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()


def test_a_hanging_redis_does_not_hold_up_the_202(
    auth_client, lr_body, settings, django_capture_on_commit_callbacks, silent_redis
):
    settings.CELERY_BROKER_URL = silent_redis
    client = auth_client("noord-lr")
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert put(client, lr_body).status_code == 202
    answered = time.monotonic() - started  # the request and its after-commit callback
    assert len(callbacks) == 1
    started = time.monotonic()
    assert wait_for_wakes()
    waker_took = time.monotonic() - started
    # The waker waited for Redis's socket timeout (0.5 s); the request did not.
    assert waker_took > 0.3
    assert answered < 0.3
    assert Confirmation.objects.get().state == "pending"
