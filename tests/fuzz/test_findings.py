"""Regression tests of what the fuzzer (test_schemathesis.py) found, as plain tests of the
normal suite (docs/reliability.md, "Fuzzing")."""

from __future__ import annotations

import re

import pytest
import yaml

from entitlements.models import DeliveryOrder, DeliveryOrderIntake
from tests.aanspraak.test_openapi import COMMITTED, delivery_order_body
from tests.support.confirm_helpers import licensor_body, request_to
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("delivery_type", [{}, [], ["school-students"], 7, True])
def test_a_delivery_type_that_is_not_a_string_is_400_not_500(registry, auth_client, delivery_type):
    body = delivery_order_body("DO-T", deliveryType=delivery_type)
    response = auth_client("oost-seller").put("/deliveryorders", body, format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["status"] == 11
    assert data["statusMessage"].startswith("deliveryOrder.deliveryType: must be one of")
    assert not DeliveryOrder.objects.exists() and not DeliveryOrderIntake.objects.exists()


def test_a_refused_nul_in_a_key_is_not_echoed_into_the_intake_answer(registry, auth_client):
    body = delivery_order_body("DO-N")
    body["deliveryOrder"]["deliverySpecification"]["students"][0]["x\x00y"] = {"z\x00": 1}
    response = auth_client("oost-seller").put("/deliveryorders", body, format="json")
    assert response.status_code == 400
    message = response.json()["statusMessage"]
    assert "\x00" not in message and "x\\u0000y" in message
    assert not DeliveryOrder.objects.exists()


def test_a_refused_nul_in_a_key_is_not_echoed_into_the_confirmation_answer(registry, auth_client):
    entitlement = make_order(registry, 1).entitlements.get()
    body = {**licensor_body(request_to(entitlement, registry.licensor)), "n\x00": "x"}
    response = auth_client("noord-lr").put("/entitlements/confirmations", body, format="json")
    assert response.status_code == 400
    message = response.json()["statusMessage"]
    assert "\x00" not in message and "n\\u0000: is not a field" in message


# --- The document now says what the hub checks (it said less: valid requests were refused) ---


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))


def test_required_strings_are_documented_non_blank(document):
    schemas = document["components"]["schemas"]
    node = schemas["EntitlementConfirmation"]["properties"]["entitlementReceiveId"]
    assert node["minLength"] == 1
    pattern = re.compile(node["pattern"])
    assert pattern.search("rcv-1") and pattern.search(" a ")
    assert not pattern.search("") and not pattern.search(" \t") and not pattern.search("a\x00")
    order_id = schemas["DeliveryOrder"]["properties"]["deliveryOrderId"]
    assert order_id["pattern"] == node["pattern"] and order_id["maxLength"] == 200


def test_alternatives_and_unknown_fields_are_documented(document):
    schemas = document["components"]["schemas"]
    assert schemas["EntitlementConfirmation"]["anyOf"] == [
        {"required": ["newEntitlementStatus"]},
        {"required": ["newUrlStatus"]},
    ]
    assert {"required": ["userIds"], "properties": {"userIds": {"minItems": 1}}} in schemas[
        "UserReference"
    ]["anyOf"]
    for closed in ("EntitlementConfirmation", "NewUrlStatus", "InitialActivation"):
        assert schemas[closed]["additionalProperties"] is False, closed
    activation = schemas["InitialActivation"]["properties"]
    assert activation["school"]["$ref"].endswith("/StrictSchoolReference")
    assert schemas["StrictUserReference"]["additionalProperties"] is False
    # The intake ignores unknown keys: its objects stay open.
    assert "additionalProperties" not in schemas["DeliveryOrder"]
    assert "additionalProperties" not in schemas["SchoolReference"]


def test_the_read_id_is_documented_as_the_intake_takes_it(document):
    (param,) = document["paths"]["/entitlements/deliveryorder/{id}"]["get"]["parameters"]
    assert param["schema"]["maxLength"] == 200
    assert re.fullmatch(param["schema"]["pattern"], "DO\t\u00a0\u200b1")
    assert not re.fullmatch(param["schema"]["pattern"], "DO\x001")
