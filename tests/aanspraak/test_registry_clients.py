"""A registry file's clients beyond the secret: ``active: false`` revokes, ``rateLimit`` limits,
``jwks``/``jwksUri`` make a private_key_jwt client (docs/registry.md)."""

import copy
import time
import uuid

import pytest
from django.test import Client as HttpClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from oauth2_provider.models import AccessToken

from aanspraak.models import Client
from aanspraak.services.client_assertions import ASSERTION_TYPE
from aanspraak.services.registry import RegistryError, load_registry
from tests.support.factories import REGISTRY
from tests.support.tokens import token_rows

pytestmark = pytest.mark.django_db
KEY = RSAKey.generate_key(2048, parameters={"kid": "noord-1"}, private=True)
PUBLIC = KeySet([RSAKey.import_key(KEY.as_dict(private=False))]).as_dict()
NOORD = 2  # parties[2] is Uitgeverij Noord, its client noord-lr


def registry_with(**client) -> dict:
    data = copy.deepcopy(REGISTRY)
    entry = data["parties"][NOORD]["clients"][0]
    entry.update(client)
    for key, value in client.items():
        if value is None:
            del entry[key]
    return data


def secret_token() -> HttpClient:
    return HttpClient().post(
        "/oauth2/token/",
        {
            "grant_type": "client_credentials",
            "client_id": "noord-lr",
            "client_secret": "noord-lr-secret",
        },
    )


def test_active_false_in_a_reloaded_file_revokes_the_client_and_its_tokens():
    load_registry(REGISTRY)
    token = secret_token().json()["access_token"]
    assert token_rows(token).exists()

    load_registry(registry_with(active=False))
    assert not Client.objects.get(client_id="noord-lr").active
    assert not AccessToken.objects.filter(application__client_id="noord-lr").exists()
    answer = secret_token()
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    reader = HttpClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert reader.get("/entitlements/confirmations/rcv-none").status_code == 401

    load_registry(REGISTRY)  # listed again without active: false: usable again
    assert secret_token().status_code == 200


def test_rate_limit_is_read_and_checked():
    load_registry(registry_with(rateLimit="600/min"))
    assert Client.objects.get(client_id="noord-lr").rate_limit == "600/min"
    load_registry(REGISTRY)  # left out again: no limit of its own
    assert Client.objects.get(client_id="noord-lr").rate_limit is None
    with pytest.raises(RegistryError) as refused:
        load_registry(registry_with(rateLimit="fast"))
    assert "parties[2] (Uitgeverij Noord).clients[0].rateLimit: 'fast' is not a rate" in str(
        refused.value
    )


def test_a_client_with_public_keys_authenticates_by_assertion_only():
    load_registry(registry_with(clientSecret=None, jwks=PUBLIC))
    now = int(time.time())
    claims = {
        "iss": "noord-lr",
        "sub": "noord-lr",
        "aud": "http://testserver/oauth2/token/",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    assertion = jwt.encode({"alg": "RS256", "kid": "noord-1"}, claims, KEY)
    answer = HttpClient().post(
        "/oauth2/token/",
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    assert answer.status_code == 200, answer.content
    assert secret_token().status_code == 401  # its old secret is gone
    report = load_registry(registry_with(clientSecret=None, jwks=PUBLIC))
    assert not report.changed  # a second load of the same file writes nothing


@pytest.mark.parametrize(
    ("client", "problem"),
    [
        ({"jwks": PUBLIC}, "give exactly one of clientSecret, jwks or jwksUri (it has"),
        ({"clientSecret": None}, "give exactly one of clientSecret, jwks or jwksUri"),
        ({"clientSecret": None, "jwks": {"keys": []}}, "must be a JWK set"),
        (
            {"clientSecret": None, "jwks": {"keys": [KEY.as_dict(private=True)]}},
            "holds a private key",
        ),
        ({"clientSecret": None, "jwksUri": "ftp://keys"}, "jwksUri: must be an http(s) URL"),
        ({"active": "no"}, "active: must be true or false"),
    ],
)
def test_bad_client_entries_name_the_key_and_write_nothing(client, problem):
    with pytest.raises(RegistryError) as refused:
        load_registry(registry_with(**client))
    assert problem in str(refused.value)
    assert not Client.objects.exists()


def test_a_jwks_uri_must_be_https_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(RegistryError, match="jwksUri: must be https in production"):
        load_registry(registry_with(clientSecret=None, jwksUri="http://keys.example/jwks"))
    settings.PRODUCTION = False
    load_registry(registry_with(clientSecret=None, jwksUri="http://keys.example/jwks"))
    assert Client.objects.get(client_id="noord-lr").jwks_uri == "http://keys.example/jwks"
