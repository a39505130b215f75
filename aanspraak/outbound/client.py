"""One JSON request to another party's API, with pooled connections and, when the party has
a token URL, an OAuth2 client-credentials bearer token cached until it expires.

Token handling is Authlib's (``authlib.integrations.httpx_client.OAuth2Client`` with
``grant_type=client_credentials``): the token is fetched on first use and fetched again when
it is about to expire. The hub authenticates at the party's token endpoint as the registry
file says (``endpoint.authMethod``, docs/registry.md): with its secret (``client_secret_basic``,
``client_secret_post``) or with a signed assertion (``private_key_jwt``,
:mod:`aanspraak.outbound.assertions`). One client per endpoint and process keeps the
connection pool and the token; it is thread-safe, so a batch can be sent concurrently from a
thread pool.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from django.conf import settings

from aanspraak.choices import EndpointAuthMethod, SigningAlgorithm

from .assertions import HubPrivateKeyJWT
from .policy import AttemptOutcome, classify, parse_retry_after

log = logging.getLogger(__name__)

# Seconds before a token's expiry at which it is fetched again.
TOKEN_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach a party's API. The secret and the private key never appear in
    ``repr``."""

    base_url: str
    token_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str = ""
    name: str = ""
    auth_method: str = EndpointAuthMethod.CLIENT_SECRET_BASIC
    private_key: str = field(default="", repr=False)  # PEM, for private_key_jwt
    key_id: str = ""
    algorithm: str = SigningAlgorithm.RS256

    @functools.cached_property
    def cache_key(self) -> tuple:
        # Digests, not the credentials: a changed secret or key makes a new session (and
        # token), and the key of the sessions dict holds nothing secret.
        secret = hashlib.sha256(self.client_secret.encode()).hexdigest()
        key = hashlib.sha256(self.private_key.encode()).hexdigest()
        return (
            self.base_url,
            self.token_url,
            self.client_id,
            secret,
            self.scope,
            self.auth_method,
            key,
            self.key_id,
            self.algorithm,
        )

    @property
    def signs_assertions(self) -> bool:
        """Authenticates at the token endpoint with private_key_jwt."""
        return self.auth_method == EndpointAuthMethod.PRIVATE_KEY_JWT

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


def endpoint_for_party(party) -> Endpoint:
    """The Endpoint of an ``aanspraak.Party`` (its ``endpoint_*`` fields)."""
    return Endpoint(
        base_url=party.endpoint_base_url or "",
        token_url=party.endpoint_token_url or "",
        client_id=party.endpoint_client_id or "",
        client_secret=party.endpoint_client_secret or "",
        name=party.name,
        auth_method=party.endpoint_auth_method or EndpointAuthMethod.CLIENT_SECRET_BASIC,
        private_key=party.endpoint_private_key or "",
        key_id=party.endpoint_key_id or "",
        algorithm=party.endpoint_algorithm or SigningAlgorithm.RS256,
    )


@dataclass(frozen=True)
class SendResult:
    """What one attempt gave: ``http_status`` is None when no answer came."""

    started_at: dt.datetime
    duration_ms: int
    http_status: int | None
    outcome: AttemptOutcome
    error: str = ""
    retry_after: float | None = None
    response_text: str = ""


def _timeout() -> httpx.Timeout:
    total = float(getattr(settings, "HUB_OUTBOUND_TIMEOUT", 10.0))
    return httpx.Timeout(total, connect=min(total, 5.0))


def _limits() -> httpx.Limits:
    size = int(getattr(settings, "HUB_OUTBOUND_CONCURRENCY", 16))
    return httpx.Limits(max_connections=size * 2, max_keepalive_connections=size)


class _Session:
    """The per-process client of one endpoint (pool + token)."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.lock = threading.Lock()
        headers = {"Accept": "application/json", "User-Agent": "aanspraakmanager"}
        if endpoint.token_url:
            client = OAuth2Client(
                client_id=endpoint.client_id,
                # With private_key_jwt no secret goes anywhere: the key signs (below).
                client_secret=None if endpoint.signs_assertions else endpoint.client_secret,
                scope=endpoint.scope or None,
                token_endpoint=endpoint.token_url,
                grant_type="client_credentials",
                token_endpoint_auth_method=endpoint.auth_method,
                leeway=TOKEN_LEEWAY_SECONDS,
                timeout=_timeout(),
                limits=_limits(),
                headers=headers,
            )
            if endpoint.signs_assertions:
                # Registered under the name token_endpoint_auth_method gives: Authlib signs
                # a fresh assertion for every token request with it.
                client.register_client_auth_method(
                    HubPrivateKeyJWT(
                        endpoint.token_url,
                        endpoint.private_key,
                        endpoint.algorithm,
                        endpoint.key_id,
                    )
                )
            self.http: httpx.Client = client
        else:
            self.http = httpx.Client(timeout=_timeout(), limits=_limits(), headers=headers)

    @property
    def uses_token(self) -> bool:
        return isinstance(self.http, OAuth2Client)

    def ensure_token(self, *, fresh: bool = True) -> dict:
        """The cached token; fetched first when there is none or, with ``fresh``, when it is
        about to expire (one thread at a time, so a batch sent concurrently fetches it once).
        Without ``fresh`` only a missing (dropped) token is fetched: the caller checked its
        expiry once for the whole batch (:func:`check_token`)."""
        client = self.http
        assert isinstance(client, OAuth2Client)
        token = client.token
        # Lock-free fast path: a valid cached token needs no lock (16 threads per request).
        if token is not None and not (fresh and token.is_expired(leeway=TOKEN_LEEWAY_SECONDS)):
            return token
        with self.lock:
            token = client.token
            if token is None or (fresh and token.is_expired(leeway=TOKEN_LEEWAY_SECONDS)):
                client.fetch_token(self.endpoint.token_url, grant_type="client_credentials")
                token = client.token
            return token

    def drop_token(self) -> None:
        """Forget the cached token (the recipient refused it: revoked or rotated)."""
        with self.lock:
            self.http.token = None  # type: ignore[attr-defined]


_sessions: dict[tuple, _Session] = {}
_sessions_lock = threading.Lock()


def _session(endpoint: Endpoint) -> _Session:
    # Keyed by pid too: a forked worker child must not share its parent's sockets.
    key = (os.getpid(), *endpoint.cache_key)
    session = _sessions.get(key)
    if session is not None:  # the common case needs no lock (every request of a batch)
        return session
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = _Session(endpoint)
        return session


def reset_sessions() -> None:
    """Close every pooled client and forget cached tokens (tests; settings changes)."""
    with _sessions_lock:
        for session in _sessions.values():
            session.http.close()
        _sessions.clear()


def token_of(endpoint: Endpoint) -> dict | None:
    """The cached token of an endpoint in this process, if any (admin and tests)."""
    session = _sessions.get((os.getpid(), *endpoint.cache_key))
    if session is None or not session.uses_token:
        return None
    return session.http.token  # type: ignore[attr-defined]


def _elapsed_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


JSON_HEADERS = {"Content-Type": "application/json"}


def send(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: dict | list | bytes | None,
    *,
    token_checked: bool = False,
) -> SendResult:
    """Send one JSON request to ``endpoint`` and classify the result. Never raises for
    network or HTTP problems: they come back as a SendResult with an outcome and error.
    ``body`` may be JSON already encoded (bytes), as the dispatcher renders it.
    ``token_checked``: :func:`check_token` ran for this batch, so the token's expiry is not
    checked again per request (a token dropped after a 401 is still fetched again)."""
    result, _ = exchange(endpoint, method, path, body, token_checked=token_checked)
    return result


def _token_failure(endpoint: Endpoint, exc: Exception, started_at, start: float) -> SendResult:
    if isinstance(exc, httpx.TimeoutException):
        return SendResult(
            started_at, _elapsed_ms(start), None, AttemptOutcome.RETRY, "token request timed out"
        )
    # A refused token request may be a configuration being fixed; retrying until the
    # horizon lets the messages go out once it is, without an admin re-send.
    return SendResult(
        started_at,
        _elapsed_ms(start),
        None,
        AttemptOutcome.RETRY,
        f"token request to {endpoint.token_url} failed: {type(exc).__name__}: {str(exc)[:300]}",
    )


def check_token(endpoint: Endpoint) -> SendResult | None:
    """Make sure this process holds a valid token for ``endpoint`` (fetching one if needed)
    before a batch is sent. None when it does or needs none; otherwise the failed attempt's
    result, for every message of the batch (they are not sent: each would fail the same)."""
    if not endpoint.base_url or not endpoint.token_url:
        return None
    started_at = dt.datetime.now(dt.UTC)
    start = time.monotonic()
    try:
        _session(endpoint).ensure_token()
    except Exception as exc:  # OAuthError, HTTP errors, bad JSON, timeouts: all retried
        return _token_failure(endpoint, exc, started_at, start)
    return None


def exchange(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: dict | list | bytes | None = None,
    params: dict | None = None,
    *,
    token_checked: bool = False,
) -> tuple[SendResult, httpx.Response | None]:
    """Like :func:`send`, but also returns the whole response (None when no answer came),
    for the clients that read what the other party answers (enrollments, usage).
    ``params`` become the query string."""
    started_at = dt.datetime.now(dt.UTC)
    start = time.monotonic()
    if not endpoint.base_url:
        return SendResult(
            started_at,
            0,
            None,
            AttemptOutcome.FAILED,
            f"party {endpoint.name or '?'} has no endpoint baseUrl in the registry",
        ), None
    session = _session(endpoint)
    headers = None
    if session.uses_token:
        try:
            token = session.ensure_token(fresh=not token_checked)
        except Exception as exc:  # OAuthError, HTTP errors, bad JSON, timeouts: all retried
            return _token_failure(endpoint, exc, started_at, start), None
        # The bearer header set directly: Authlib's per-request auth flow would check the
        # token again and rebuild every request.
        headers = {"Authorization": f"Bearer {token['access_token']}"}
    if isinstance(body, bytes):
        content, json_body = body, None
        headers = {**JSON_HEADERS, **(headers or {})}
    else:
        content, json_body = None, body
    try:
        response = session.http.request(
            method,
            endpoint.url(path),
            content=content,
            json=json_body,
            params=params,
            headers=headers,
            **({"withhold_token": True} if session.uses_token else {}),
        )
    except httpx.TimeoutException as exc:
        return SendResult(
            started_at,
            _elapsed_ms(start),
            None,
            AttemptOutcome.RETRY,
            f"timeout: {type(exc).__name__}",
        ), None
    except httpx.TransportError as exc:
        return SendResult(
            started_at,
            _elapsed_ms(start),
            None,
            AttemptOutcome.RETRY,
            f"connection error: {type(exc).__name__}: {str(exc)[:300]}",
        ), None
    duration = _elapsed_ms(start)
    outcome = classify(response.status_code)
    text = response.text[:500]
    error = "" if outcome is AttemptOutcome.DELIVERED else f"HTTP {response.status_code}: {text}"
    if response.status_code == 401 and session.uses_token:
        # Our cached token was refused (revoked, rotated keys): fetch a new one next time.
        session.drop_token()
        outcome = AttemptOutcome.RETRY
    return SendResult(
        started_at,
        duration,
        response.status_code,
        outcome,
        error,
        parse_retry_after(response.headers.get("Retry-After")),
        text,
    ), response
