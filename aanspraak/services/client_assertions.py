"""Client authentication by signed assertion, ``private_key_jwt`` (RFC 7523 §2.2, as the NL GOV
Assurance profile for OAuth 2.0 prescribes; docs/security.md).

A client registered with public keys (``jwks`` inline or ``jwksUri``) proves who it is with a
JWT it signed: ``iss`` = ``sub`` = its clientId, ``aud`` the token endpoint, ``exp`` in the future
and at most ``MAX_LIFETIME`` after ``iat``, a ``jti`` never seen before from it (replays are
refused across all web processes: Django's cache, the hub's Redis), signed with RS256, PS256 or
ES256 (``none`` and HMAC are refused). Every refusal says which rule failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable

import httpx
from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from aanspraak.models import Client

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS256", "PS256", "ES256"]
MAX_LIFETIME = 600  # seconds from iat to exp
# A jwksUri is fetched again for an unknown kid at most this often, per client.
REFETCH_SECONDS = 60


class AssertionRefused(Exception):
    """The assertion does not authenticate a client; ``str()`` says which rule failed."""


def _unverified(assertion: str) -> tuple[dict, dict]:
    """The header and claims of a compact JWS, not yet verified."""
    try:
        compact = extract_compact(assertion.encode())
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise AssertionRefused(f"client_assertion is not a signed JWT ({exc})") from exc
    if not isinstance(claims, dict):
        raise AssertionRefused("client_assertion's claims are not a JSON object")
    return compact.headers(), claims


def _cached(call, default=None):
    # The key cache is an optimisation: without it the keys are fetched every time.
    try:
        return call()
    except Exception:
        log.warning("JWK cache unavailable", exc_info=True)
        return default


def issuer(assertion: str) -> str:
    """The ``iss`` an assertion names (unverified: for logging and counting failures)."""
    try:
        return str(_unverified(assertion)[1].get("iss", ""))
    except AssertionRefused:
        return ""


def _fetch_jwks(client: Client) -> dict:
    url = client.jwks_uri
    if settings.PRODUCTION and not url.startswith("https://"):
        raise AssertionRefused(f"the jwksUri of client {client.client_id} must be https")
    try:
        answer = httpx.get(url, timeout=settings.HUB_JWKS_TIMEOUT, follow_redirects=False)
        answer.raise_for_status()
        keys = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise AssertionRefused(
            f"the keys of client {client.client_id} could not be fetched from its jwksUri"
        ) from exc
    if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
        raise AssertionRefused(f"the jwksUri of client {client.client_id} holds no JWK set")
    _cached(lambda: cache.set(f"jwks:{client.pk}", keys, timeout=settings.HUB_JWKS_CACHE_SECONDS))
    return keys


def _key_set(client: Client, kid: str | None) -> KeySet:
    """The client's public keys; a jwksUri's from the cache, fetched again when ``kid`` is not
    among them (at most once per REFETCH_SECONDS)."""
    if client.jwks:
        return _import(client, client.jwks)
    fetched = f"jwks-fetched:{client.pk}"
    keys = _cached(lambda: cache.get(f"jwks:{client.pk}"))
    if keys is None:
        _cached(lambda: cache.add(fetched, 1, timeout=REFETCH_SECONDS))
        return _import(client, _fetch_jwks(client))
    key_set = _import(client, keys)
    if (
        kid is not None
        and not _has_kid(key_set, kid)
        and _cached(lambda: cache.add(fetched, 1, timeout=REFETCH_SECONDS), True)
    ):
        key_set = _import(client, _fetch_jwks(client))
    return key_set


def _has_kid(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set.keys)


def _import(client: Client, keys: dict) -> KeySet:
    try:
        return KeySet.import_key_set(keys)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise AssertionRefused(f"the keys of client {client.client_id} are not a JWK set") from exc


def _audiences(audience: Iterable[str]) -> set[str]:
    if settings.HUB_TOKEN_AUDIENCE:
        return {settings.HUB_TOKEN_AUDIENCE}
    # The URL the client called, with or without its trailing slash.
    return {url.rstrip("/") for url in audience} | {url.rstrip("/") + "/" for url in audience}


def authenticate(assertion: str, client_id: str | None, token_url: str) -> Client:
    """The client ``assertion`` authenticates (``client_id``, when the request names one,
    must be its ``iss``); AssertionRefused saying which rule failed otherwise."""
    header, claims = _unverified(assertion)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AssertionRefused(f"alg {alg!r} is not accepted: sign with {', '.join(ALGORITHMS)}")
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise AssertionRefused("iss is missing: it must be the clientId")
    if client_id and client_id != iss:
        raise AssertionRefused(f"client_id {client_id} is not the assertion's iss {iss}")
    client = Client.objects.select_related("party").filter(client_id=iss).first()
    if client is None or not client.uses_assertions:
        raise AssertionRefused(f"client {iss} is not registered for private_key_jwt")
    if not client.active:
        raise AssertionRefused(f"client {iss} is revoked (active: false in the registry file)")

    kid = header.get("kid")
    key_set = _key_set(client, kid)
    if kid is None and len(key_set.keys) == 1:
        verify_with = key_set.keys[0]  # one key: a kid is not needed to choose it
    elif kid is None:
        raise AssertionRefused(f"kid is missing: client {iss} has several keys")
    elif not _has_kid(key_set, kid):
        raise AssertionRefused(f"kid {kid!r} is not one of the keys of client {iss}")
    else:
        verify_with = key_set
    try:
        claims = jwt.decode(assertion, verify_with, algorithms=ALGORITHMS).claims
    except JoseError as exc:
        raise AssertionRefused(f"the signature does not verify with the keys of {iss}") from exc

    if claims.get("sub") != iss:
        raise AssertionRefused("sub must be the clientId, as iss is")
    aud = claims.get("aud")
    given = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
    wanted = _audiences([token_url])
    if not given & wanted:
        raise AssertionRefused(f"aud must be the token endpoint's URL ({sorted(wanted)[0]})")
    now = time.time()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp <= now:
        raise AssertionRefused("exp is missing or in the past")
    if not isinstance(iat, int | float):
        raise AssertionRefused("iat is missing")
    if exp - iat > MAX_LIFETIME:
        raise AssertionRefused(f"exp is more than {MAX_LIFETIME} seconds after iat")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise AssertionRefused("jti is missing")
    seen = f"jti:{client.pk}:{hashlib.sha256(jti.encode()).hexdigest()[:40]}"
    try:
        first = cache.add(seen, 1, timeout=int(exp - now) + 1)
    except Exception:  # no shared cache: a replay cannot be ruled out, so refuse
        log.warning("jti store unavailable; client assertion refused", exc_info=True)
        raise AssertionRefused("the hub cannot check jti just now; retry shortly") from None
    if not first:
        raise AssertionRefused(f"jti {jti} was used before: an assertion is good for one request")
    return client
