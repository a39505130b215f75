"""The hub's outbound calls authenticate as the registry file's ``endpoint.authMethod`` says
(docs/registry.md, docs/security.md): a loopback token endpoint checks what arrives, verifying
private_key_jwt assertions with the hub's public key, and the message then arrives with the
bearer token it issued."""

from __future__ import annotations

import copy
import logging
import time

import pytest
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError

from aanspraak.outbound.client import _session, endpoint_for_party
from aanspraak.services.client_assertions import ASSERTION_TYPE
from aanspraak.services.registry import load_registry
from entitlements import outbox
from entitlements.models import DeliveryAttempt, OutboundMessage
from tests.support.factories import REGISTRY, make_order
from tests.support.keys import ec_pem, key_material, public_jose_key, rsa_pem
from tests.support.loopback import LoopbackParty, Received

NOORD = 2  # parties[2] of REGISTRY: Uitgeverij Noord, the licensor


class AssertionChecker:
    """A token endpoint's check of RFC 7523 §2.2 client authentication: every rule, with the
    public key the party was given."""

    def __init__(self, server: LoopbackParty, public_pem_of: str, alg: str, kid: str | None):
        self.server, self.key, self.alg, self.kid = server, public_jose_key(public_pem_of), alg, kid
        self.claims: list[dict] = []

    def __call__(self, received: Received) -> str | None:
        form = LoopbackParty.form(received)
        if "Authorization" in received.headers or "client_secret" in form:
            return "a secret was sent"
        if form.get("grant_type") != "client_credentials":
            return "not client_credentials"
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return "no client assertion"
        try:
            token = jwt.decode(form["client_assertion"], self.key, algorithms=[self.alg])
        except (JoseError, KeyError, ValueError) as exc:
            return f"signature: {type(exc).__name__}"
        claims, now = token.claims, time.time()
        self.claims.append(claims)
        checks = {
            "alg": token.header["alg"] == self.alg,
            "kid": token.header.get("kid") == self.kid,
            "iss/sub": claims["iss"] == claims["sub"] == "hub-at-noord",
            "aud": claims["aud"] == self.server.token_url,
            "exp": claims["iat"] - 5 <= now < claims["exp"] <= claims["iat"] + 600,
            "jti": [c["jti"] for c in self.claims].count(claims["jti"]) == 1,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        return f"refused: {', '.join(failed)}" if failed else None


@pytest.fixture
def server():
    party = LoopbackParty().start()
    party.require_token = True
    yield party
    party.stop()


def endpoint(server: LoopbackParty, **auth) -> dict:
    """The licensor's registry file with its endpoint at ``server`` and ``auth``."""
    data = copy.deepcopy(REGISTRY)
    data["parties"][NOORD]["endpoint"] = {
        "baseUrl": server.base_url,
        "tokenUrl": server.token_url,
        "clientId": "hub-at-noord",
        **auth,
    }
    return data


def states(registry) -> set[str]:
    rows = OutboundMessage.objects.filter(recipient=registry.licensor)
    return set(rows.values_list("state", flat=True))


@pytest.mark.parametrize(
    ("pem", "alg", "kid"),
    [(rsa_pem(), "RS256", "hub-2026"), (rsa_pem(), "PS256", None), (ec_pem(), "ES256", "hub-ec")],
)
def test_private_key_jwt_gets_a_token_and_the_message_carries_it(registry, server, pem, alg, kid):
    auth = {"authMethod": "private_key_jwt", "privateKey": pem, "algorithm": alg}
    load_registry(endpoint(server, **auth, **({"keyId": kid} if kid else {})))
    checker = server.authenticate_client = AssertionChecker(server, pem, alg, kid)
    server.token_lifetime = 1  # within the leeway: every drain fetches a new token

    make_order(registry, 2)
    assert outbox.drain(registry.licensor.pk).delivered == 2
    make_order(registry, 1)
    assert outbox.drain(registry.licensor.pk).delivered == 1

    assert len(server.token_requests) == 2 and len(checker.claims) == 2
    assert checker.claims[0]["jti"] != checker.claims[1]["jti"]
    assert states(registry) == {"delivered"}
    # Each message arrived with a bearer token the token endpoint issued.
    bearers = [r.headers["Authorization"].removeprefix("Bearer ") for r in server.received]
    assert len(bearers) == 3 and set(bearers) <= server.tokens


def test_a_wrong_key_is_refused_retried_and_a_reloaded_key_delivers(
    registry, server, settings, caplog
):
    settings.HUB_RETRY_BASE_SECONDS = 60
    right, wrong = rsa_pem(0), rsa_pem(1)
    server.authenticate_client = AssertionChecker(server, right, "RS256", None)
    load_registry(endpoint(server, authMethod="private_key_jwt", privateKey=wrong))
    make_order(registry, 1)
    with caplog.at_level(logging.DEBUG):
        report = outbox.drain(registry.licensor.pk)
    # The refusal is a failed token request: retried until the horizon, like any other.
    assert report.retry == 1 and server.received == []
    message = OutboundMessage.objects.get(recipient=registry.licensor)
    assert message.state == "pending" and message.next_attempt_at > timezone.now()
    assert "token request" in message.last_error and "invalid_client" in message.last_error
    attempt = DeliveryAttempt.objects.get(message=message)
    assert (attempt.http_status, attempt.outcome) == (None, "retry")
    for line in key_material(wrong):
        assert line not in caplog.text and line not in message.last_error

    # Rotation: the party has the new public key; the file gets the matching private key.
    load_registry(endpoint(server, authMethod="private_key_jwt", privateKey=right))
    OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    with caplog.at_level(logging.DEBUG):
        assert outbox.drain(registry.licensor.pk).delivered == 1
    assert states(registry) == {"delivered"}
    for line in key_material(right):
        assert line not in caplog.text


def test_the_key_is_in_no_repr(registry, server):
    pem = ec_pem()
    load_registry(endpoint(server, authMethod="private_key_jwt", privateKey=pem, algorithm="ES256"))
    registry.licensor.refresh_from_db()
    target = endpoint_for_party(registry.licensor)
    assert target.private_key == pem and target.signs_assertions
    session = _session(target)
    auth = session.http._auth_methods["private_key_jwt"]
    for shown in (repr(target), repr(auth), repr(session.http.__dict__)):
        assert not any(line in shown for line in key_material(pem))
    # A new key is a new session (and token), as a new secret is.
    other = endpoint_for_party(registry.licensor)
    object.__setattr__(other, "private_key", ec_pem(1))
    assert other.cache_key != target.cache_key


def test_client_secret_post_sends_the_secret_in_the_form(registry, server):
    def secret_in_form(received: Received) -> str | None:
        form = LoopbackParty.form(received)
        if "Authorization" in received.headers:
            return "HTTP Basic was used"
        ok = (form.get("client_id"), form.get("client_secret")) == ("hub-at-noord", "s3cret")
        return None if ok else "wrong credentials"

    server.authenticate_client = secret_in_form
    load_registry(endpoint(server, authMethod="client_secret_post", clientSecret="s3cret"))
    make_order(registry, 1)
    assert outbox.drain(registry.licensor.pk).delivered == 1
    assert len(server.token_requests) == 1 and states(registry) == {"delivered"}


def test_client_secret_basic_stays_the_default(registry, server):
    load_registry(endpoint(server, clientSecret="s3cret"))
    make_order(registry, 1)
    assert outbox.drain(registry.licensor.pk).delivered == 1
    assert server.basic_credentials(server.token_requests[0]) == ("hub-at-noord", "s3cret")
