"""The OAuth2 token endpoint (client credentials, per-client scopes) and what the API does
with good and bad tokens."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys

import pytest
from django.test import Client as HttpClient
from django.utils import timezone
from oauth2_provider.models import AccessToken

from aanspraak.api.token import TokenView
from tests.support.factories import make_order
from tests.support.tokens import token_rows

TOKEN_URL = "/oauth2/token/"
READ_URL = "/entitlements/deliveryorder/{}"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def request_token(client_id: str, secret: str, scope: str | None = None, *, in_form=False):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    http = HttpClient()
    if in_form:
        data |= {"client_id": client_id, "client_secret": secret}
        return http.post(TOKEN_URL, data)
    return http.post(TOKEN_URL, data, HTTP_AUTHORIZATION=basic(client_id, secret))


def read(token: str, order_id: str):
    return HttpClient().get(READ_URL.format(order_id), HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize("in_form", [False, True], ids=["basic-auth", "form-fields"])
def test_client_gets_all_its_scopes_when_it_asks_for_none(registry, in_form):
    response = request_token("noord-lr", "noord-lr-secret", in_form=in_form)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["token_type"] == "Bearer"
    assert set(data["scope"].split()) == {"eduv.entitlement.licensor", "eduv.usage.licensor"}
    assert data["expires_in"] == 3600
    # Opaque: a random string, not a JWT with claims.
    assert data["access_token"].count(".") != 2
    assert "refresh_token" not in data


def test_client_gets_a_subset_of_its_scopes(registry):
    response = request_token("noord-lr", "noord-lr-secret", "eduv.usage.licensor")
    assert response.status_code == 200
    assert response.json()["scope"] == "eduv.usage.licensor"


@pytest.mark.parametrize(
    "scope",
    ["eduv.entitlement.seller", "eduv.entitlement.licensor eduv.entitlement.portal", "made.up"],
)
def test_asking_for_a_scope_not_registered_is_invalid_scope(registry, scope):
    response = request_token("noord-lr", "noord-lr-secret", scope)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    "client_id, secret",
    [("noord-lr", "wrong"), ("noord-lr", "zuid-portal-secret"), ("nobody", "x")],
)
def test_wrong_credentials_are_invalid_client(registry, client_id, secret):
    response = request_token(client_id, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "secret" not in response.content.decode().lower().replace("client_secret", "")
    assert not AccessToken.objects.exists()


def test_other_grant_types_are_refused(registry):
    response = HttpClient().post(
        TOKEN_URL,
        {"grant_type": "password", "username": "x", "password": "y"},
        HTTP_AUTHORIZATION=basic("noord-lr", "noord-lr-secret"),
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] in {"unauthorized_client", "invalid_grant"}
    assert not AccessToken.objects.exists()


def test_token_lifetime_is_configurable(registry, settings):
    # DOT caches its oauthlib server (with the lifetime) on the view class: rebuild it here
    # and drop it afterwards so other tests get the default again.
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ACCESS_TOKEN_EXPIRE_SECONDS": 120}
    try:
        if hasattr(TokenView, "_oauthlib_core"):
            del TokenView._oauthlib_core
        response = request_token("oost-seller", "oost-seller-secret")
    finally:
        if hasattr(TokenView, "_oauthlib_core"):
            del TokenView._oauthlib_core
    assert response.json()["expires_in"] == 120
    token = token_rows(response.json()["access_token"]).get()
    remaining = (token.expires - timezone.now()).total_seconds()
    assert 100 < remaining <= 120


def test_token_lifetime_comes_from_the_environment(subprocess_env):
    env = {**subprocess_env, "HUB_TOKEN_LIFETIME": "900"}
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings');"
        "django.setup(); from django.conf import settings;"
        "print(settings.OAUTH2_PROVIDER['ACCESS_TOKEN_EXPIRE_SECONDS'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "900"


def test_token_endpoint_wrong_method_is_statusresponse_405(registry):
    response = HttpClient().get(TOKEN_URL)
    assert response.status_code == 405
    assert response.json() == {"status": 99, "statusMessage": "405 Method Not Allowed."}
    assert set(response["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert response["API-Version"]


def test_token_from_the_endpoint_reads_the_api(registry):
    order = make_order(registry, 2)
    token = request_token("oost-seller", "oost-seller-secret").json()["access_token"]
    response = read(token, order.delivery_order_id)
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content).split(b'"entitlementId"')) == 3


def test_token_with_a_scope_the_endpoint_does_not_accept_is_403(registry):
    order = make_order(registry, 1)
    token = request_token("noord-lr", "noord-lr-secret", "eduv.usage.licensor").json()
    response = read(token["access_token"], order.delivery_order_id)
    assert response.status_code == 403
    assert response.json()["status"] == 21


def test_other_clients_token_sees_only_that_clients_data(registry):
    """A token is bound to its client's party: Zee's token reads nothing of Oost's order."""
    order = make_order(registry, 1)
    token = request_token("zee-seller", "zee-seller-secret").json()["access_token"]
    response = read(token, order.delivery_order_id)
    assert response.status_code == 404


def test_expired_token_is_401(registry):
    order = make_order(registry, 1)
    token = request_token("oost-seller", "oost-seller-secret").json()["access_token"]
    token_rows(token).update(expires=timezone.now() - dt.timedelta(seconds=1))
    response = read(token, order.delivery_order_id)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["status"] == 99


def test_revoked_token_is_401(registry):
    order = make_order(registry, 1)
    token = request_token("oost-seller", "oost-seller-secret").json()["access_token"]
    assert read(token, order.delivery_order_id).status_code == 200
    token_rows(token).get().revoke()
    response = read(token, order.delivery_order_id)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer not-a-token", "Token abc", "bearer", "Basic b29zdDpzZWNyZXQ="],
)
def test_malformed_or_unknown_authorization_is_401(registry, header):
    order = make_order(registry, 1)
    response = HttpClient().get(READ_URL.format(order.delivery_order_id), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"status", "statusMessage"}
