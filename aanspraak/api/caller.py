"""Who is calling: the party and scopes behind a request's access token."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework.permissions import BasePermission

from aanspraak.models import Client, Party

from .authentication import CachedToken
from .errors import ScopeRequired


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of an API request."""

    party: Party
    client: Client
    scopes: frozenset[str]


def get_caller(request) -> Caller:
    """The Caller of an authenticated request (set by HasChainScope)."""
    return request.caller


class HasChainScope(BasePermission):
    """Allows a request whose token carries at least one of the view's ``required_scopes``.

    Without a token DRF answers 401; a valid token without any of the scopes gets 403 with
    functional code 21. Sets ``request.caller``.
    """

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if isinstance(token, CachedToken):
            client, party, granted = token.client, token.party, token.scopes
        elif token is not None and hasattr(token, "application"):
            # DOT's own path (aanspraak.api.authentication): a row, its party one query away.
            client = token.application
            party, granted = client.party, frozenset(token.scope.split())
        else:
            return False  # DRF turns this into 401 (authenticate_header is Bearer)
        required = getattr(view, "required_scopes", ())
        if required and granted.isdisjoint(required):
            have = " ".join(sorted(granted)) or "none"
            raise ScopeRequired(
                f"This endpoint needs one of the scopes {', '.join(sorted(set(required)))}; "
                f"the token has {have}."
            )
        request.caller = Caller(party=party, client=client, scopes=granted)
        return True
