"""The API's cheaper negotiation, JSON parser and admin-only messages answer as DRF and
Django did: JSON for the usual Accept headers, DRF's 406 otherwise, the 400 of malformed
JSON, the empty 202, and messages still shown in the admin."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.confirm_helpers import licensor_body, request_to
from tests.support.factories import make_order


@pytest.fixture
def licensor(registry, auth_client):
    return auth_client("noord-lr", "eduv.entitlement.licensor")


def _confirmation(registry) -> dict:
    order = make_order(registry, n=1)
    entitlement = order.entitlements.get()
    return licensor_body(request_to(entitlement, registry.licensor))


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*"])
def test_usual_accept_headers_get_json(registry, licensor, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = licensor.put("/entitlements/confirmations", "{}", content_type="application/json",
                            **headers)  # fmt: skip
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["status"] == 11


def test_an_accept_the_api_cannot_give_is_still_drfs_406(registry, licensor):
    response = licensor.get("/entitlements/deliveryorder/DO-X", HTTP_ACCEPT="text/html")
    assert response.status_code == 406


def test_malformed_json_is_a_400_naming_the_parse_error(registry, licensor):
    response = licensor.put(
        "/entitlements/confirmations", '{"entitlementId": ', content_type="application/json"
    )
    assert response.status_code == 400
    body = json.loads(response.content)
    assert body["status"] == 11 and "JSON parse error" in body["statusMessage"]


def test_accepted_confirmation_is_an_empty_202_without_content_type(registry, licensor):
    body = _confirmation(registry)
    response = licensor.put(
        "/entitlements/confirmations", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 202
    assert response.content == b""
    assert "Content-Type" not in response
    assert response["API-Version"]


def test_api_requests_set_up_no_message_storage_but_the_admin_does(registry, licensor, rf):
    from aanspraak.middleware import AdminMessageMiddleware

    middleware = AdminMessageMiddleware(lambda request: None)
    api = rf.put("/entitlements/confirmations")
    middleware.process_request(api)
    assert not hasattr(api, "_messages")
    page = rf.get("/admin/")
    page.session = {}
    middleware.process_request(page)
    assert hasattr(page, "_messages")


def test_receive_ids_stay_unique_per_sender(registry, licensor):
    """A repeated receive id is still a no-op through the fast path (202, one row)."""
    from confirmations.models import Confirmation

    body = _confirmation(registry)
    body["entitlementReceiveId"] = f"rcv-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        response = licensor.put(
            "/entitlements/confirmations", json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 202
    assert Confirmation.objects.filter(receive_id=body["entitlementReceiveId"]).count() == 1
