"""The error contract everywhere: StatusResponse JSON with the API-Version header, from DRF
views, from Django (unknown URL, unhandled exception), and the Licentieregistratie's
endpoints that answer 405 on the hub."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.test import Client as HttpClient

from tests.support.factories import make_order

METHODS = ["get", "post", "put", "patch", "delete", "options", "head"]


def assert_status_response(response, http_status: int, code: int | None = None) -> dict:
    assert response.status_code == http_status
    assert response["Content-Type"] == "application/json"
    assert response["API-Version"] == settings.HUB_API_VERSION
    data = response.json()
    assert set(data) == {"status", "statusMessage"}
    assert isinstance(data["status"], int) and data["statusMessage"]
    if code is not None:
        assert data["status"] == code
    return data


@pytest.mark.parametrize(
    "path",
    [
        "/nothing/here",
        "/entitlements/deliveryorder/",
        "/entitlements/deliveryorder/DO-1/",
        "/entitlements/deliveryorder/DO-1/extra",
        "/usage/contracts/",
        "/api/",
    ],
)
def test_unknown_url_is_json_404(db, path):
    data = assert_status_response(HttpClient().get(path), 404, 99)
    assert path in data["statusMessage"]


def test_unhandled_exception_is_json_500(registry, make_token, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("database on fire: password=hunter2")

    monkeypatch.setattr("entitlements.api.read.visible_orders", boom)
    client = HttpClient(raise_request_exception=False)
    response = client.get(
        "/entitlements/deliveryorder/DO-1",
        HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}",
    )
    data = assert_status_response(response, 500, 99)
    # Nothing of the exception reaches the caller.
    assert "hunter2" not in response.content.decode()
    assert "fire" not in data["statusMessage"]


def _gone(*args, **kwargs):
    raise OperationalError("connection failed: connection refused")


def assert_database_away(response) -> None:
    data = assert_status_response(response, 503, 99)
    assert response["Retry-After"] == "1"
    assert "nothing was stored" in data["statusMessage"]


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_the_token_endpoint_answers_503_when_the_database_is_away(registry, monkeypatch, error):
    """django-oauth-toolkit's view is not DRF's: its database error is answered by the
    middleware (docs/api.md, "Errors"), not as a 500."""

    def gone(*args, **kwargs):
        raise error("connection already closed")

    monkeypatch.setattr("aanspraak.api.token.blocked_for", lambda *a: 0)
    monkeypatch.setattr("aanspraak.api.token.Client.objects.filter", gone)
    client = HttpClient(raise_request_exception=False)
    response = client.post(
        "/oauth2/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION="Basic bm9vcmQtbHI6bm9vcmQtbHItc2VjcmV0",  # noord-lr:noord-lr-secret
    )
    assert_database_away(response)


def test_a_database_error_outside_any_view_is_a_503_too(db, monkeypatch):
    """From a middleware (no view's handler sees it): handler500 answers it as the 503."""
    monkeypatch.setattr("aanspraak.api.request_checks.RequestChecksMiddleware.__call__", _gone)
    client = HttpClient(raise_request_exception=False)
    assert_database_away(client.get("/entitlements/deliveryorder/DO-1"))


def test_a_database_error_in_a_drf_view_is_a_503(registry, make_token, monkeypatch):
    monkeypatch.setattr("entitlements.api.read.visible_orders", _gone)
    client = HttpClient(raise_request_exception=False)
    response = client.get(
        "/entitlements/deliveryorder/DO-1",
        HTTP_AUTHORIZATION=f"Bearer {make_token('oost-seller')}",
    )
    assert_database_away(response)


@pytest.mark.parametrize(
    "path, provider_path",
    [
        ("/usage/school/user", "/usage/school/user"),
        ("/usage/contracts/C-1", "/usage/contracts/C-1"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("with_token", [False, True])
def test_licentieregistratie_endpoints_are_405_for_every_method(
    registry, make_token, path, provider_path, method, with_token
):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {make_token('oost-seller')}"} if with_token else {}
    client = HttpClient()
    if method in ("get", "head"):
        response = getattr(client, method)(path, **headers)
    else:
        response = getattr(client, method)(
            path, data="{}", content_type="application/json", **headers
        )
    assert response.status_code == 405
    # The hub allows no method here at all: an empty Allow (RFC 9110 §10.2.1).
    assert response["Allow"] == ""
    assert response["API-Version"] == settings.HUB_API_VERSION
    if method == "head":
        return  # no body on HEAD
    data = assert_status_response(response, 405, 99)
    assert "Licentieregistratie is the provider" in data["statusMessage"]
    assert provider_path in data["statusMessage"]
    assert method.upper() in data["statusMessage"]


def test_every_response_carries_api_version(registry, auth_client, api_client):
    order = make_order(registry, 1)
    responses = [
        auth_client("oost-seller").get(f"/entitlements/deliveryorder/{order.delivery_order_id}"),
        api_client.get(f"/entitlements/deliveryorder/{order.delivery_order_id}"),  # 401
        auth_client("zee-seller").get(f"/entitlements/deliveryorder/{order.delivery_order_id}"),
        HttpClient().get("/api/schema/"),
        HttpClient().get("/api/docs/"),
        HttpClient().post("/oauth2/token/", {"grant_type": "client_credentials"}),
        HttpClient().get("/nope"),
    ]
    assert [r.status_code for r in responses] == [200, 401, 404, 200, 200, 401, 404]
    assert all(r["API-Version"] == settings.HUB_API_VERSION for r in responses)


def test_401_challenge_says_the_token_is_invalid_when_one_was_sent(registry, api_client):
    make_order(registry, 1, delivery_order_id="DO-1")
    response = api_client.get("/entitlements/deliveryorder/DO-1")
    assert response["WWW-Authenticate"] == 'Bearer realm="aanspraakmanager"'
    api_client.credentials(HTTP_AUTHORIZATION="Bearer nope")
    response = api_client.get("/entitlements/deliveryorder/DO-1")
    assert response["WWW-Authenticate"] == (
        'Bearer realm="aanspraakmanager", error="invalid_token"'
    )
