"""Finding an issued access token's row: tokens are stored as their SHA-256 only (RFC 9700
token storage, docs/security.md), so a test looks a token up by its checksum."""

from __future__ import annotations

import hashlib

from django.db.models import QuerySet
from oauth2_provider.models import AccessToken


def token_rows(token: str) -> QuerySet[AccessToken]:
    """The row(s) of ``token`` (a queryset: ``.get()``, ``.update()``, ``.exists()``)."""
    return AccessToken.objects.filter(token_checksum=hashlib.sha256(token.encode()).hexdigest())
