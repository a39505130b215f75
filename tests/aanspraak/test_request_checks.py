"""What every API request must pass before a view reads it: the body's size (413), the major
API version asked for (400, status 12), the body's media type (415); each a StatusResponse,
and nothing stored (aanspraak/api/request_checks.py)."""

import json

import pytest
from django.conf import settings

from confirmations.models import Confirmation
from entitlements.models import DeliveryOrder, Entitlement, OutboundMessage
from tests.aanspraak.test_openapi import delivery_order_body
from tests.support.confirm_helpers import licensor_body, request_to
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db
URL = "/entitlements/confirmations"


@pytest.fixture
def body(registry):
    entitlement = make_order(registry, 1).entitlements.get()
    return licensor_body(request_to(entitlement, registry.licensor))


def _rows() -> tuple[int, int, int, int]:
    return (
        Confirmation.objects.count(),
        DeliveryOrder.objects.count(),
        Entitlement.objects.count(),
        OutboundMessage.objects.count(),
    )


def _status(response, http_status: int) -> dict:
    assert response.status_code == http_status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response["API-Version"] == settings.HUB_API_VERSION
    answer = response.json()
    assert set(answer) == {"status", "statusMessage"}
    return answer


def test_a_body_over_the_limit_is_413_and_stores_nothing(settings, auth_client, body):
    raw = json.dumps(body)
    settings.HUB_MAX_BODY_BYTES = len(raw) - 1
    before = _rows()
    answer = _status(auth_client("noord-lr").put(URL, raw, content_type="application/json"), 413)
    assert answer["status"] == 99
    assert f"{len(raw):,} bytes" in answer["statusMessage"]
    assert f"at most {len(raw) - 1:,} bytes" in answer["statusMessage"]
    assert _rows() == before

    settings.HUB_MAX_BODY_BYTES = len(raw)  # exactly the limit is fine
    response = auth_client("noord-lr").put(URL, raw, content_type="application/json")
    assert response.status_code == 202
    assert Confirmation.objects.count() == before[0] + 1


def test_delivery_orders_have_their_own_limit(settings, auth_client):
    seller = auth_client("oost-seller")
    raw = json.dumps(delivery_order_body("DO-LIMIT"))
    settings.HUB_MAX_BODY_BYTES = 10  # the other endpoints' limit does not apply
    settings.HUB_MAX_ORDER_BYTES = len(raw) - 1
    before = _rows()
    answer = _status(seller.put("/deliveryorders", raw, content_type="application/json"), 413)
    assert "Nothing was stored" in answer["statusMessage"]
    assert _rows() == before

    settings.HUB_MAX_ORDER_BYTES = len(raw)
    placed = seller.put("/deliveryorders", raw, content_type="application/json")
    assert placed.status_code == 202, placed.content
    assert DeliveryOrder.objects.count() == before[1] + 1


def test_the_token_endpoint_is_limited_too(settings, api_client):
    settings.HUB_MAX_BODY_BYTES = 50
    form = "grant_type=client_credentials&client_id=noord-lr&client_secret=" + "x" * 100
    response = api_client.post(
        "/oauth2/token/", form, content_type="application/x-www-form-urlencoded"
    )
    assert _status(response, 413)["status"] == 99


@pytest.mark.parametrize("asked", ["2.0.0", "0.9", "2", "v1", ""])
def test_an_api_version_of_another_major_is_400_status_12(auth_client, body, asked):
    before = _rows()
    response = auth_client("noord-lr").put(URL, body, format="json", HTTP_API_VERSION=asked)
    answer = _status(response, 400)
    assert answer["status"] == 12
    assert settings.HUB_API_VERSION in answer["statusMessage"]
    assert _rows() == before


@pytest.mark.parametrize("asked", ["1", "1.0", "1.0.0", " 1.4.2 "])
def test_an_api_version_of_the_served_major_is_served(auth_client, body, asked):
    response = auth_client("noord-lr").put(URL, body, format="json", HTTP_API_VERSION=asked)
    assert response.status_code == 202, response.content


def test_reads_check_the_version_as_well(auth_client):
    response = auth_client("oost-seller").get(
        "/entitlements/deliveryorder/DO-NONE", HTTP_API_VERSION="3.0.0"
    )
    assert _status(response, 400)["status"] == 12


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.eduv+json"],
)
def test_json_and_structured_json_media_types_are_read(auth_client, body, content_type):
    response = auth_client("noord-lr").put(URL, json.dumps(body), content_type=content_type)
    assert response.status_code == 202, response.content
    assert Confirmation.objects.filter(receive_id=body["entitlementReceiveId"]).exists()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x", ""]
)
def test_a_body_that_is_not_json_is_415_and_stores_nothing(auth_client, body, content_type):
    before = _rows()
    response = auth_client("noord-lr").generic(
        "PUT", URL, json.dumps(body), content_type=content_type
    )
    answer = _status(response, 415)
    assert answer["status"] == 11
    assert "application/json" in answer["statusMessage"]
    assert _rows() == before


def test_a_put_without_a_body_is_the_views_400(auth_client):
    response = auth_client("noord-lr").generic("PUT", URL, "", content_type="")
    assert _status(response, 400)["status"] == 11


def test_the_admin_is_left_alone(settings, client):
    settings.HUB_MAX_BODY_BYTES = 10
    response = client.post(
        "/admin/login/", {"username": "x", "password": "y"}, HTTP_API_VERSION="9"
    )
    assert response.status_code in (200, 403)  # Django's own page (the CSRF check)
    assert not response["Content-Type"].startswith("application/json")
