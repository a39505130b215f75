"""The bearer-token cache (aanspraak/api/authentication.py, docs/api.md#authentication):
a cached token costs no query, yet an expired token is refused at once, a revocation or a
client change in this process takes effect at once, and one made elsewhere (no signal here)
within HUB_TOKEN_CACHE_SECONDS."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from aanspraak.api.authentication import clear_token_cache
from confirmations.models import Confirmation
from tests.support.confirm_helpers import licensor_body, portal_body, request_to
from tests.support.factories import make_order

URL = "/entitlements/confirmations"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def entitlement(registry):
    return make_order(registry, 1).entitlements.get()


@pytest.fixture
def body(registry, entitlement):
    message = request_to(entitlement, registry.licensor)

    def _body():
        return licensor_body(message)  # a new entitlementReceiveId each time

    return _body


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def put(client: APIClient, body: dict):
    return client.put(URL, body, format="json")


def token_queries(client: APIClient, body: dict) -> tuple[int, int]:
    """(status, number of token lookups) of one PUT."""
    with CaptureQueriesContext(connection) as queries:
        status = put(client, body).status_code
    return status, sum("oauth2_provider_accesstoken" in q["sql"] for q in queries)


def delete_elsewhere(sql: str, *params) -> None:
    """A change made by another process: plain SQL, so no signal reaches this one."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_cached_token_is_not_looked_up_again(make_token, body):
    client = bearer(make_token("noord-lr"))
    assert token_queries(client, body()) == (202, 1)
    assert token_queries(client, body()) == (202, 0)
    assert token_queries(client, body()) == (202, 0)


def test_cache_off_looks_the_token_up_every_time(make_token, body, settings):
    settings.HUB_TOKEN_CACHE_SECONDS = 0
    client = bearer(make_token("noord-lr"))
    assert token_queries(client, body()) == (202, 1)
    assert token_queries(client, body()) == (202, 1)


def test_a_token_that_expires_while_cached_is_refused_at_once(make_token, body):
    token = make_token("noord-lr", expires_in=1)
    client = bearer(token)
    assert put(client, body()).status_code == 202
    time.sleep(1.1)
    status, lookups = token_queries(client, body())
    assert status == 401
    assert lookups == 0  # refused from the cached expiry, not by a fresh read
    assert Confirmation.objects.count() == 1


def test_a_token_revoked_in_this_process_is_refused_at_once(make_token, body):
    token = make_token("noord-lr")
    client = bearer(token)
    assert put(client, body()).status_code == 202
    AccessToken.objects.get(token=token).revoke()
    response = put(client, body())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="aanspraakmanager", error="invalid_token"'
    assert response.json()["status"] == 99


def test_a_client_deleted_in_this_process_is_refused_at_once(registry, make_token, body):
    client = bearer(make_token("noord-lr"))
    assert put(client, body()).status_code == 202
    registry.clients["noord-lr"].delete()  # its tokens go with it
    assert put(client, body()).status_code == 401


def test_a_token_revoked_elsewhere_works_at_most_the_cache_time(make_token, body, settings):
    settings.HUB_TOKEN_CACHE_SECONDS = 1
    token = make_token("noord-lr")
    client = bearer(token)
    assert put(client, body()).status_code == 202
    delete_elsewhere(
        "DELETE FROM oauth2_provider_accesstoken WHERE token_checksum = %s",
        AccessToken.objects.get(token=token).token_checksum,
    )
    # The documented bound: still accepted from the cache until it is read again...
    assert put(client, body()).status_code == 202
    time.sleep(1.1)
    # ...and refused once the cache time is over.
    assert put(client, body()).status_code == 401


def test_a_client_removed_elsewhere_works_at_most_the_cache_time(
    registry, make_token, body, settings
):
    settings.HUB_TOKEN_CACHE_SECONDS = 1
    client = bearer(make_token("noord-lr"))
    assert put(client, body()).status_code == 202
    pk = registry.clients["noord-lr"].pk
    delete_elsewhere("DELETE FROM oauth2_provider_accesstoken WHERE application_id = %s", pk)
    delete_elsewhere(
        "UPDATE confirmations_confirmation SET client_id = NULL WHERE client_id = %s", pk
    )
    delete_elsewhere("DELETE FROM aanspraak_client WHERE id = %s", pk)
    within = body()
    assert put(client, within).status_code == 202
    # stored without the client, as its on_delete=SET_NULL would have left it
    assert Confirmation.objects.get(receive_id=within["entitlementReceiveId"]).client is None
    time.sleep(1.1)
    assert put(client, body()).status_code == 401


def test_an_expired_token_is_refused_on_first_use_too(make_token, body):
    token = make_token("noord-lr")
    AccessToken.objects.filter(token=token).update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert put(bearer(token), body()).status_code == 401


def test_a_party_changed_in_this_process_is_read_again(registry, make_token, entitlement):
    """The caller's party comes from the cache too; a change to it drops the cached tokens."""
    client = bearer(make_token("zuid-portal"))
    message = request_to(entitlement, registry.portal)
    assert put(client, portal_body(message)).status_code == 202
    registry.portal.portal_id = "portal-zuid-2"
    registry.portal.save()
    response = put(client, portal_body(message))  # still names portal-zuid
    assert response.status_code == 403
    assert "portal-zuid-2" in response.json()["statusMessage"]


def test_the_cache_is_keyed_by_the_whole_token(make_token, body):
    token = make_token("noord-lr")
    assert put(bearer(token), body()).status_code == 202
    assert put(bearer(token[:-1]), body()).status_code == 401
    assert put(bearer(token + "x"), body()).status_code == 401
