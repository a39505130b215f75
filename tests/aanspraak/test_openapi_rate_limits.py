"""The 429 of the rate limits in the OpenAPI document (docs/api.md, "Rate limits"): every
operation that takes a token documents it with ``Retry-After`` and a StatusResponse, and a
real 429 of each such operation matches the document."""

from __future__ import annotations

import pytest

from aanspraak.models import Client
from tests.aanspraak.test_openapi import AnswerChecker, delivery_order_body, schema  # noqa: F401
from tests.support.confirm_helpers import activation_body, licensor_body, request_to
from tests.support.factories import make_order

SECURED = [
    ("/deliveryorders", "put"),
    ("/entitlements/confirmations", "put"),
    ("/entitlements/confirmations/{entitlementReceiveId}", "get"),
    ("/entitlements/deliveryorder/{id}", "get"),
    ("/usage/activation", "put"),
]


def test_every_operation_with_a_token_documents_429_with_retry_after(schema):  # noqa: F811
    secured = sorted(
        (path, method)
        for path, operations in schema["paths"].items()
        for method, op in operations.items()
        if op.get("security")
    )
    assert secured == sorted(SECURED)
    for path, method in secured:
        answer = schema["paths"][path][method]["responses"]["429"]
        assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer", path
        assert answer["headers"]["Retry-After"]["required"] is True
        body = answer["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/StatusResponse"}
        assert "rate limit" in answer["description"]
    # The operations of the Licentieregistratie take no token and answer only 405.
    for path, operations in schema["paths"].items():
        for op in operations.values():
            if not op.get("security"):
                assert "429" not in op["responses"], path


def _requests(registry):
    """(path, method, client id, a valid request) per secured operation."""
    entitlement = make_order(registry, 1, delivery_order_id="DO-RL").entitlements.get()
    confirm = licensor_body(request_to(entitlement, registry.licensor))
    return {
        ("/deliveryorders", "put"): (
            "oost-seller",
            lambda c: c.put("/deliveryorders", delivery_order_body("DO-RL-2"), format="json"),
        ),
        ("/entitlements/confirmations", "put"): (
            "noord-lr",
            lambda c: c.put("/entitlements/confirmations", confirm, format="json"),
        ),
        ("/entitlements/confirmations/{entitlementReceiveId}", "get"): (
            "noord-lr",
            lambda c: c.get("/entitlements/confirmations/rcv-none"),
        ),
        ("/entitlements/deliveryorder/{id}", "get"): (
            "oost-seller",
            lambda c: c.get("/entitlements/deliveryorder/DO-RL"),
        ),
        ("/usage/activation", "put"): (
            "noord-lr",
            lambda c: c.put("/usage/activation", activation_body(entitlement), format="json"),
        ),
    }


@pytest.mark.parametrize(("path", "method"), SECURED)
def test_a_real_429_matches_the_document(schema, registry, auth_client, path, method):  # noqa: F811
    client_id, send = _requests(registry)[path, method]
    Client.objects.filter(client_id=client_id).update(rate_limit="1/min")
    caller = auth_client(client_id)
    send(caller)  # the one request of this minute
    refused = send(caller)
    data = AnswerChecker(schema, path, method)(refused, 429)
    assert data["status"] == 99 and "1/min" in data["statusMessage"]
    assert 1 <= int(refused["Retry-After"]) <= 60
