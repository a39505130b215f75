"""Access tokens issued in-process, for the benchmark scripts that call the hub's views
without going through its token endpoint (``make bench`` asks the endpoint itself)."""

from __future__ import annotations

import datetime as dt
import secrets


def issue_token(client, *, scope: str | None = None, token: str | None = None) -> str:
    """An hour's access token of the registry ``client`` (its allowed scopes unless
    ``scope``), replacing any earlier token with the same text; the token."""
    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    token = token or secrets.token_urlsafe(30)
    AccessToken.objects.filter(token=token).delete()
    AccessToken.objects.create(
        application=client,
        token=token,
        scope=scope if scope is not None else client.allowed_scopes,
        expires=timezone.now() + dt.timedelta(hours=1),
    )
    return token
