"""Client authentication by signed assertion (private_key_jwt, RFC 7523 §2.2) at
``POST /oauth2/token/``: accepted with RS256, PS256 and ES256 and every rule of the assertion
met; every other assertion is ``401 invalid_client`` naming the rule that failed, with nothing
issued (aanspraak/services/client_assertions.py)."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client as HttpClient
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from oauth2_provider.models import AccessToken

from aanspraak.models import Client
from aanspraak.services.client_assertions import ASSERTION_TYPE
from tests.support.keys import signed_assertion
from tests.support.loopback import Answer, LoopbackParty

pytestmark = pytest.mark.django_db
TOKEN_URL = "/oauth2/token/"
AUDIENCE = "http://testserver/oauth2/token/"
ALL = ["RS256", "PS256", "ES256", "HS256"]

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)  # same kid


def public(*keys) -> dict:
    return KeySet([type(k).import_key(k.as_dict(private=False)) for k in keys]).as_dict()


@pytest.fixture
def jwt_client(registry):
    Client.objects.filter(client_id="noord-lr").update(jwks=public(RSA, EC))
    return Client.objects.get(client_id="noord-lr")


def assertion(key=RSA, alg="RS256", *, header=None, **claims) -> str:
    return signed_assertion(
        "noord-lr", key, AUDIENCE, alg=alg, header=header, algorithms=ALL, **claims
    )


def ask(signed: str | None, **form):
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    if signed is not None:
        data["client_assertion"] = signed
    data.update(form)
    return HttpClient().post(TOKEN_URL, {k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(("key", "alg"), [(RSA, "RS256"), (RSA, "PS256"), (EC, "ES256")])
def test_a_good_assertion_gets_a_token_that_reads_the_api(jwt_client, key, alg):
    answer = ask(assertion(key, alg), scope="eduv.entitlement.licensor")
    assert answer.status_code == 200, answer.content
    token = answer.json()["access_token"]
    assert answer.json()["scope"] == "eduv.entitlement.licensor"
    reader = HttpClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert reader.get("/entitlements/confirmations/rcv-none").status_code == 404  # served


@pytest.mark.parametrize(
    "aud", [AUDIENCE, AUDIENCE.rstrip("/"), ["https://elsewhere.example", AUDIENCE]]
)
def test_the_audience_is_the_token_url_with_or_without_slash_or_a_list_with_it(jwt_client, aud):
    assert ask(assertion(aud=aud), client_id="noord-lr").status_code == 200


def test_hub_token_audience_replaces_the_url(jwt_client, settings):
    settings.HUB_TOKEN_AUDIENCE = "https://hub.example/oauth2/token"
    assert ask(assertion()).status_code == 401
    assert ask(assertion(aud="https://hub.example/oauth2/token")).status_code == 200


def _refused(answer, rule: str) -> None:
    assert answer.status_code == 401, answer.content
    body = answer.json()
    assert body["error"] == "invalid_client"
    assert rule in body["error_description"], body["error_description"]


def later(seconds: int) -> int:
    return int(time.time()) + seconds


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda: assertion(iss="berg-lr"), "is not registered for private_key_jwt"),
        (lambda: assertion(iss=None), "iss is missing"),
        (lambda: assertion(sub="someone"), "sub must be the clientId"),
        (lambda: assertion(aud="https://elsewhere.example/token"), "aud must be the token"),
        (lambda: assertion(exp=later(-5)), "exp is missing or in the past"),
        (lambda: assertion(iat=None), "iat is missing"),
        (lambda: assertion(iat=later(0), exp=later(601)), "more than 600 seconds after iat"),
        (lambda: assertion(jti=None), "jti is missing"),
        (lambda: assertion(STRANGER), "signature does not verify"),
        (lambda: assertion(header={"alg": "RS256", "kid": "gone"}), "kid 'gone' is not one"),
        (lambda: assertion(header={"alg": "RS256"}), "kid is missing"),
        (
            lambda: assertion(OctKey.import_key("noord-lr-secret" * 3), header={"alg": "HS256"}),
            "alg 'HS256' is not accepted",
        ),
        (lambda: "eyJhbGciOiJub25lIn0.eyJpc3MiOiJub29yZC1sciJ9.", "alg 'none' is not accepted"),
        (lambda: "not-a-jwt", "is not a signed JWT"),
    ],
)
def test_every_broken_rule_is_invalid_client_naming_it_and_issues_nothing(jwt_client, make, rule):
    tokens = AccessToken.objects.count()
    _refused(ask(make()), rule)
    assert AccessToken.objects.count() == tokens


def test_a_replayed_assertion_is_refused(jwt_client):
    signed = assertion()
    assert ask(signed).status_code == 200
    _refused(ask(signed), "was used before")


def test_the_client_id_given_must_be_the_assertions_issuer(jwt_client):
    _refused(ask(assertion(), client_id="berg-lr"), "is not the assertion's iss")


def test_the_assertion_type_must_be_jwt_bearer(jwt_client):
    _refused(ask(assertion(), client_assertion_type="urn:example:other"), "must be urn:ietf")
    _refused(ask(None), "client_assertion is missing")


def test_a_client_with_keys_cannot_use_its_secret(jwt_client):
    answer = HttpClient().post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": "noord-lr",
            "client_secret": "noord-lr-secret",
        },
    )
    _refused(answer, "a client secret is not accepted")


def test_a_client_without_keys_cannot_use_an_assertion(registry):
    _refused(ask(assertion()), "is not registered for private_key_jwt")


def test_a_revoked_client_cannot_use_an_assertion(jwt_client):
    Client.objects.filter(pk=jwt_client.pk).update(active=False)
    _refused(ask(assertion()), "is revoked")


@pytest.fixture
def jwks_server():
    served = {"keys": public(RSA)}
    server = LoopbackParty(lambda received: Answer(200, served["keys"])).start()
    server.served = served
    yield server
    server.stop()


def test_keys_at_a_jwks_uri_are_fetched_kept_and_fetched_again_for_a_new_kid(registry, jwks_server):
    Client.objects.filter(client_id="noord-lr").update(jwks_uri=jwks_server.base_url + "/jwks")
    client = Client.objects.get(client_id="noord-lr")
    assert ask(assertion()).status_code == 200
    assert ask(assertion()).status_code == 200
    assert len(jwks_server.received) == 1  # kept

    jwks_server.served["keys"] = public(RSA, EC)  # the client adds a key
    # Within the minute of the first fetch an unknown kid is not fetched again (no storm) ...
    _refused(ask(assertion(EC, "ES256")), "kid 'ec-1' is not one of the keys")
    assert len(jwks_server.received) == 1
    cache.delete(f"jwks-fetched:{client.pk}")  # ... a minute later it is
    assert ask(assertion(EC, "ES256")).status_code == 200
    assert len(jwks_server.received) == 2
    # and then not again within that minute.
    other = ECKey.generate_key("P-256", parameters={"kid": "ec-2"}, private=True)
    _refused(ask(assertion(other, "ES256")), "kid 'ec-2' is not one of the keys")
    assert len(jwks_server.received) == 2


def test_a_jwks_uri_that_does_not_answer_is_invalid_client(registry, settings):
    settings.HUB_JWKS_TIMEOUT = 0.5
    Client.objects.filter(client_id="noord-lr").update(jwks_uri="http://127.0.0.1:1/jwks")
    _refused(ask(assertion()), "could not be fetched from its jwksUri")
