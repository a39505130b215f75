"""Bearer-token authentication with a short in-process cache of who a token belongs to.

Looking a token up costs a query (and DOT's oauthlib round, some 3 ms of Python) on every
request. The cache keeps, per token checksum, the token's expiry, scopes, client and party for
at most ``HUB_TOKEN_CACHE_SECONDS``. The bound, as docs/api.md#authentication states it:

- an expired token is refused at once (its expiry is part of the cached entry);
- a token revoked or a client deleted or changed in *this* process is dropped at once
  (signals); in any other process it keeps working for at most ``HUB_TOKEN_CACHE_SECONDS``;
- ``HUB_TOKEN_CACHE_SECONDS=0`` turns the cache off (one query per request).

Anything but a plain ``Authorization: Bearer <token>`` header, and tokens restricted to a
resource (RFC 8707), take DOT's own path, uncached; DOT refuses a token in the query string
(RFC 9700 §4.3.2, docs/security.md, "Production").
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.models import AccessToken

from aanspraak.models import Client, Party

# More entries than this and the cache starts over: a bound on memory, never on correctness.
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CachedToken:
    """What a request needs of its access token: who it is, what it may, until when.

    ``request.auth`` of an authenticated API request; the party and client are shared by the
    requests of one process and must be treated as read-only."""

    checksum: str
    client: Client
    party: Party
    scopes: frozenset[str]
    expires_at: float  # epoch seconds, the token's own expiry
    cached_until: float  # time.monotonic() after which the row is read again


_entries: dict[str, CachedToken] = {}


def clear_token_cache() -> None:
    """Forget every cached token (tests; after a bulk revocation)."""
    _entries.clear()


def _checksum(token: str) -> str:
    # The same SHA-256 DOT stores in AccessToken.token_checksum.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _bearer(request) -> str | None:
    """The token of a well-formed ``Authorization: Bearer <token>`` header, else None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def _load(checksum: str, ttl: float) -> CachedToken | AccessToken | None:
    """The token row with its client and party (one query). A resource-restricted token is
    returned as the row itself: DOT checks its audience, uncached."""
    row = (
        AccessToken.objects.select_related("application__party")
        .filter(token_checksum=checksum)
        .first()
    )
    if row is None or row.application is None or not row.application.active:
        return None  # unknown, or its client revoked (docs/api.md#authentication)
    if row.resource:
        return row
    client = row.application
    entry = CachedToken(
        checksum=checksum,
        client=client,
        party=client.party,
        scopes=frozenset(row.scope.split()),
        expires_at=row.expires.timestamp(),
        cached_until=time.monotonic() + ttl,
    )
    if ttl > 0:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[checksum] = entry
    return entry


class CachedBearerAuthentication(OAuth2Authentication):
    """DOT's OAuth2 bearer authentication with the token cache in front (module docstring).

    Answers ``(None, CachedToken)`` for a valid token (client-credentials tokens have no
    user), None for a missing, unknown or expired one (DRF answers 401)."""

    def authenticate(self, request):
        token = _bearer(request)
        if token is None:
            return super().authenticate(request)
        checksum = _checksum(token)
        entry = _entries.get(checksum)
        if entry is None or entry.cached_until <= time.monotonic():
            entry = _load(checksum, settings.HUB_TOKEN_CACHE_SECONDS)
            if isinstance(entry, AccessToken):
                return super().authenticate(request)  # its client is active (_load)
        if entry is None or entry.expires_at <= time.time():
            request.oauth2_error = {"error": "invalid_token"}
            return None
        return None, entry


# Changes made in this process take effect at once; other processes wait for the TTL.
@receiver(post_delete, sender=AccessToken, dispatch_uid="token-cache-revoked")
def _forget_token(sender, instance: AccessToken, **kwargs) -> None:
    _entries.pop(instance.token_checksum, None)


@receiver(post_save, sender=AccessToken, dispatch_uid="token-cache-token-changed")
def _forget_changed_token(sender, instance: AccessToken, **kwargs) -> None:
    _entries.pop(instance.token_checksum, None)


@receiver(post_save, sender=Client, dispatch_uid="token-cache-client-changed")
@receiver(post_delete, sender=Client, dispatch_uid="token-cache-client-deleted")
def _forget_client(sender, instance: Client, **kwargs) -> None:
    for checksum, entry in list(_entries.items()):
        if entry.client.pk == instance.pk:
            _entries.pop(checksum, None)


@receiver(post_save, sender=Party, dispatch_uid="token-cache-party-changed")
def _forget_party(sender, instance: Party, **kwargs) -> None:
    for checksum, entry in list(_entries.items()):
        if entry.party.pk == instance.pk:
            _entries.pop(checksum, None)
